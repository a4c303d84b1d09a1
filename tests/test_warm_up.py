"""The server loads the SDK, the TLS context and the tokenizer in the background."""

from gpt_ls import tokens


async def test_warm_up_loads_tls_context_and_tokenizer_of_the_configured_model(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_LS_CONFIG_DIR", str(tmp_path))
    from gpt_ls import client
    from gpt_ls.server import GptLanguageServer

    tokens.reset()
    client._SSL_CONTEXTS.clear()
    ls = GptLanguageServer()
    ls.set_editor_settings({"model": "gpt-4"})
    ls.warm_up()
    assert ls._warm is not None
    await ls._warm
    assert sorted(tokens._loaded) == ["cl100k_base"]
    assert len(client._SSL_CONTEXTS) == 1
