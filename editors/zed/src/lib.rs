//! Zed runs language servers only through extensions: this one starts `gpt-ls` from PATH
//! (or the `lsp.gpt-ls.binary` setting) and passes the user's settings along.

use zed_extension_api::{self as zed, settings::LspSettings, LanguageServerId, Result};

struct GptLsExtension;

impl zed::Extension for GptLsExtension {
    fn new() -> Self {
        GptLsExtension
    }

    fn language_server_command(
        &mut self,
        server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<zed::Command> {
        let binary = LspSettings::for_worktree(server_id.as_ref(), worktree)
            .ok()
            .and_then(|settings| settings.binary);
        let args = binary
            .as_ref()
            .and_then(|b| b.arguments.clone())
            .unwrap_or_default();
        let command = binary
            .and_then(|b| b.path)
            .or_else(|| worktree.which("gpt-ls"))
            .ok_or_else(|| {
                "gpt-ls not found on PATH: `pipx install gpt-ls`, or set lsp.gpt-ls.binary.path"
                    .to_string()
            })?;
        Ok(zed::Command {
            command,
            args,
            env: worktree.shell_env(),
        })
    }

    fn language_server_initialization_options(
        &mut self,
        server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<zed::serde_json::Value>> {
        Ok(LspSettings::for_worktree(server_id.as_ref(), worktree)
            .ok()
            .and_then(|settings| settings.initialization_options))
    }

    fn language_server_workspace_configuration(
        &mut self,
        server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<zed::serde_json::Value>> {
        let settings = LspSettings::for_worktree(server_id.as_ref(), worktree)
            .ok()
            .and_then(|settings| settings.settings);
        Ok(settings.map(|s| zed::serde_json::json!({ "gpt-ls": s })))
    }
}

zed::register_extension!(GptLsExtension);
