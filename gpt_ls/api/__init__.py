"""Talking to the OpenAI API: keys, proxy routing, the HTTP client and what its failures mean.

``keys`` finds the API key (``apiKey`` or ``apiKeyCommand``); ``proxy`` decides, per URL,
which proxy a request goes through; ``http`` builds (and reuses) the ``AsyncOpenAI``
client with its TLS context and proxy router; ``failures`` turns any exception from a
request into a :class:`gpt_ls.errors.GptLsError` carrying the sentence a user acts on.
"""
