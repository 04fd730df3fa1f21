//! The data directory holds the store (nostr key, verify key, dev node seed, webhook secrets,
//! preimages) and the admin token: it is private to the service user. The directory is 0700
//! and every file in it 0600, whatever umask the process was started with.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Makes new files private to their owner for the rest of the process (sled creates its files
/// with the process umask). Called first thing by the binary.
pub fn restrict_umask() {
    #[cfg(unix)]
    // SAFETY: umask only swaps the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates the data directory (0700), or tightens an existing one and everything in it that
/// others could read, saying so in the log.
pub fn prepare(path: &Path) -> io::Result<()> {
    if !path.exists() {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        builder.mode(DIR_MODE);
        builder.create(path)?;
    }
    let tightened = tighten(path)?;
    if !tightened.is_empty() {
        tracing::warn!(
            data_dir = %path.display(),
            count = tightened.len(),
            first = %tightened[0].display(),
            "the data directory was readable by others: made it and its files private to this user"
        );
    }
    Ok(())
}

/// Removes group and other permissions from `path` and everything under it; returns what it
/// changed.
pub fn tighten(path: &Path) -> io::Result<Vec<PathBuf>> {
    let mut changed = Vec::new();
    tighten_into(path, &mut changed)?;
    Ok(changed)
}

#[cfg(unix)]
fn tighten_into(path: &Path, changed: &mut Vec<PathBuf>) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let wanted = if meta.is_dir() { DIR_MODE } else { FILE_MODE };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & wanted))?;
        changed.push(path.to_owned());
    }
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            tighten_into(&entry?.path(), changed)?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten_into(_: &Path, _: &mut Vec<PathBuf>) -> io::Result<()> {
    Ok(())
}

/// Writes `bytes` to `path` as a whole or not at all, readable by its owner only: a temporary
/// file beside it (0600), flushed to disk, then renamed over `path`. A crash leaves the old
/// file or the new one, never half of one, and an existing file's looser mode does not survive.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(FILE_MODE);
    let written = (|| {
        let mut file = options.open(&temp)?;
        #[cfg(unix)]
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        // The rename itself is durable once the directory is.
        fs::File::open(dir).and_then(|d| d.sync_all())
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_open_data_directory_and_its_files_are_made_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        fs::create_dir_all(dir.join("store")).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.join("store/db"), b"x").unwrap();
        fs::set_permissions(dir.join("store/db"), fs::Permissions::from_mode(0o644)).unwrap();
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("store/db")), 0o600);
        assert!(tighten(&dir).unwrap().is_empty(), "nothing left to do");
    }

    #[test]
    fn a_new_data_directory_is_private_from_the_start() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("fresh/data");
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn private_writes_replace_a_readable_file_with_a_private_one() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("backup.json");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            fs::read_dir(root.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}
