"""gpt-ls: a language server that puts OpenAI's chat models inside any editor."""

__version__ = "0.1.0"
