//! Files that hold a private key: written readable by their owner only.

use std::io::Write;
use std::path::Path;

use crate::SdkError;

fn file_error(path: &Path, error: impl ToString) -> SdkError {
    SdkError::File {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

/// Reads a JSON file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, SdkError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    serde_json::from_str(&text).map_err(|e| file_error(path, e))
}

/// Writes `value` as JSON to a file only its owner may read.
pub(crate) fn write_private_json(
    path: &Path,
    value: &impl serde::Serialize,
) -> Result<(), SdkError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| file_error(path, e))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    // The private key never sits on disk with wider permissions, not even briefly.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| file_error(path, e))?;
    // `mode` applies only to a new file: narrow one that was already there.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| file_error(path, e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| file_error(path, e))
}
