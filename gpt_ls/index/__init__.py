"""The workspace index: files, chunks, search; the context a question is sent with, its citations, mentions."""
