"""The LSP edge: the server factory, the protocol tweaks, thin handlers and the LSP editor port."""
