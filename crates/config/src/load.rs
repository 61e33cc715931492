//! `--config FILE`: the file is tried as protobuf text format and as
//! ProtoJSON; exactly one must parse (nsjail's rule). Both → ambiguous,
//! neither → both parsers' messages with line:col.

use std::path::Path;

use crate::error::ConfigError;
use crate::proto::config::NsJailConfig;
use crate::textformat::{self, FieldLoc};

/// A loaded config file with the provenance of its top-level fields.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The parsed message (only what the file says; defaults via accessors).
    pub cfg: NsJailConfig,
    /// Which format parsed.
    pub format: ConfigFormat,
    /// For text format: where each top-level field was set.
    pub locs: Vec<FieldLoc>,
}

/// The format a config file was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// Protobuf text format.
    Text,
    /// ProtoJSON (proto3 JSON mapping; lowerCamelCase or original names).
    Json,
}

/// Reads and parses a config file (text format or JSON; exactly one must parse).
pub fn load_config_file(path: &Path) -> Result<NsJailConfig, ConfigError> {
    load_config_file_with_locs(path).map(|l| l.cfg)
}

/// Like [`load_config_file`] but also returns the format and field locations.
pub fn load_config_file_with_locs(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::ConfigRead {
        path: path.to_path_buf(),
        source,
    })?;
    load_config_bytes(path, &bytes)
}

/// Parses config bytes; `path` is only used in messages.
pub fn load_config_bytes(path: &Path, bytes: &[u8]) -> Result<LoadedConfig, ConfigError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let (line, col) = line_col(bytes, e.valid_up_to());
            return Err(ConfigError::ConfigParse {
                path: path.to_path_buf(),
                primary: format!("{line}:{col}: the file is not valid UTF-8"),
                other_kind: "either format",
                other: "protobuf text format and JSON both need UTF-8".into(),
            });
        }
    };
    // As nsjail: only a 0-byte file is an error; blank lines make an empty
    // text-format config (as C++ protobuf parses them).
    if text.is_empty() {
        return Err(ConfigError::ConfigEmpty {
            path: path.to_path_buf(),
        });
    }
    let as_text = textformat::parse::<NsJailConfig>(text);
    let as_json = parse_json(text);
    match (as_text, as_json) {
        (Ok(_), Ok(_)) => Err(ConfigError::ConfigAmbiguous {
            path: path.to_path_buf(),
        }),
        (Ok((cfg, locs)), Err(_)) => Ok(LoadedConfig {
            cfg,
            format: ConfigFormat::Text,
            locs,
        }),
        (Err(_), Ok(cfg)) => Ok(LoadedConfig {
            cfg,
            format: ConfigFormat::Json,
            locs: Vec::new(),
        }),
        (Err(te), Err(je)) => {
            let te = format!("not valid text format: {te}");
            let je = format!("not valid JSON: {je}");
            // Report first the format the file was most likely meant to be in.
            let (primary, other_kind, other) = if text.trim_start().starts_with('{') {
                (je, "text format", te)
            } else {
                (te, "JSON", je)
            };
            Err(ConfigError::ConfigParse {
                path: path.to_path_buf(),
                primary,
                other_kind,
                other,
            })
        }
    }
}

/// ProtoJSON as C++ `JsonStringToMessage` reads it by default: unknown
/// fields are errors, both field-name spellings are accepted. A missing
/// required field is named.
fn parse_json(text: &str) -> Result<NsJailConfig, String> {
    let mut m = NsJailConfig::new();
    protobuf_json_mapping::merge_from_str(&mut m, text).map_err(|e| e.to_string())?;
    if let Some(path) = textformat::missing_required(&m, "") {
        return Err(format!("message is missing required field {path}; add it"));
    }
    Ok(m)
}

fn line_col(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(s: &str) -> Result<LoadedConfig, ConfigError> {
        load_config_bytes(Path::new("t.cfg"), s.as_bytes())
    }

    #[test]
    fn formats() {
        assert_eq!(load("hostname: \"a\"").unwrap().format, ConfigFormat::Text);
        let j = load("{\"hostname\": \"a\", \"timeLimit\": 5, \"time_limit\": 6}");
        // Both spellings are accepted; the later wins as in C++.
        let j = j.unwrap();
        assert_eq!(j.format, ConfigFormat::Json);
        assert_eq!(j.cfg.time_limit(), 6);
    }

    #[test]
    fn errors() {
        assert!(matches!(load(""), Err(ConfigError::ConfigEmpty { .. })));
        let e = load("hostname: \"a\"\nfoo: 1").unwrap_err().to_string();
        assert!(
            e.contains("t.cfg") && e.contains("2:1") && e.contains("foo"),
            "{e}"
        );
        let e = load("{\"foo\": 1}").unwrap_err().to_string();
        assert!(e.starts_with("config 't.cfg': not valid JSON"), "{e}");
        assert!(e.contains("foo"), "{e}");
        let e = load_config_bytes(Path::new("b.cfg"), b"name: \"\xff\"").unwrap_err();
        assert!(e.to_string().contains("1:8"), "{e}");
        let e = load("{\"mount\": [{\"src\": \"/a\"}]}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mount[0].dst"), "{e}");
    }

    #[test]
    fn blank_lines_are_an_empty_text_config_but_zero_bytes_an_error() {
        for blank in ["\n", "\n\n  \n\t\n", " ", "\r\n\r\n"] {
            let l = load(blank).unwrap_or_else(|e| panic!("{blank:?}: {e}"));
            assert_eq!(l.format, ConfigFormat::Text, "{blank:?}");
            assert_eq!(l.cfg, NsJailConfig::new(), "{blank:?}");
        }
        let e = load("").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
    }

    #[test]
    fn comment_only_is_text() {
        // A file with only comments is a valid, empty text-format config
        // (and not valid JSON), so it loads.
        let l = load("# nothing\n").unwrap();
        assert_eq!(l.format, ConfigFormat::Text);
    }
}
