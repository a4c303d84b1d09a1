"""Talking to the OpenAI API: keys, proxy routing, the HTTP client and what its failures mean.

``keys`` finds the API key (``apiKey`` or ``apiKeyCommand``); ``proxy`` decides, per URL,
which proxy a request goes through; ``http`` builds (and reuses) the ``AsyncOpenAI``
client with its TLS context and proxy router; ``failures`` turns any exception from a
request into a :class:`gpt_ls.errors.GptLsError` carrying the sentence a user acts on.
``lean`` makes the SDK's ``openai.types`` packages lazy; it is installed here, before any of
these modules imports ``openai``, so the server and the terminal commands both start faster.
"""

from gpt_ls.api import lean

lean.install()
