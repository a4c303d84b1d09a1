"""gpt-ls tests (a package: test support is imported as ``tests.support``)."""
