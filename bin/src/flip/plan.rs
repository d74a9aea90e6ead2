//! From command-line arguments (files, folders, glob patterns) to
//! [`FlipJob`]s: expanding them, naming the outputs, and catching two jobs
//! that would write the same file before any work starts.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};

use super::{FlipJob, FlipOptions, Format};

/// The jobs for one run, and the arguments that gave none.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// One job per input file, in argument order, each input once.
    pub jobs: Vec<FlipJob>,
    /// Arguments that named no input: a pattern matching nothing, a folder
    /// without images.
    pub rejected: Vec<Rejected>,
}

/// An argument that gave no input, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The argument as given.
    pub argument: PathBuf,
    /// Why it gave nothing.
    pub cause: String,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.argument.display(), self.cause)
    }
}

/// Inputs whose outputs would overwrite each other or an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    /// The output they would write.
    pub output: PathBuf,
    /// The inputs that would write it, in argument order.
    pub inputs: Vec<PathBuf>,
    /// Whether the output is itself one of the inputs.
    pub output_is_input: bool,
}

impl fmt::Display for Collision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let (names, verb) = match names.as_slice() {
            [one] => (one.clone(), "would write"),
            [a, b] => (format!("{a} and {b}"), "would both write"),
            [rest @ .., last] => (
                format!("{}, and {last}", rest.join(", ")),
                "would all write",
            ),
            [] => (String::new(), "would write"),
        };
        write!(f, "{names} {verb} {}", self.output.display())?;
        if self.output_is_input {
            f.write_str(", which is also an input")?;
        }
        Ok(())
    }
}

/// Why a run cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// Outputs that would overwrite each other or an input.
    #[error("{} output collision{}: {}", .0.len(), if .0.len() == 1 { "" } else { "s" },
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Collisions(Vec<Collision>),
    /// The output folder is not usable: a file, not writable, or missing
    /// with its parent folder.
    #[error("--out {}: {reason}", path.display())]
    OutDir {
        /// The folder.
        path: PathBuf,
        /// Why, in a few words.
        reason: String,
    },
}

impl Plan {
    /// Expands `arguments` and names each output `<stem>_flipped.<ext>`,
    /// beside its input or in `out_dir`. An `out_dir` that does not exist
    /// is not created here: each job creates it just before writing
    /// ([`FlipOptions::create_folder`]), so a run that writes nothing leaves
    /// no new folder; its parent must exist.
    ///
    /// - An existing file (or anything else that is not a folder) is an input.
    /// - A folder gives the image files in it (by extension), sorted by name,
    ///   leaving out hidden files and the outputs of an earlier run
    ///   (`*_flipped.*`).
    /// - A path that does not exist and holds `*`, `?` or `[` is a glob
    ///   pattern: its matches, sorted, are inputs (a folder matched stays an
    ///   input, and fails as one). A pattern that matches nothing is rejected.
    /// - Any other path is an input, so its worker reports it missing.
    ///
    /// An input given twice is flipped once.
    ///
    /// ```
    /// use procpool_cli::flip::{FlipOptions, Format, Plan};
    /// let options = FlipOptions { format: Format::Png, ..FlipOptions::default() };
    /// let plan = Plan::new(&["photos/a.jpg"], None, options).unwrap();
    /// assert_eq!(plan.jobs[0].output, std::path::Path::new("photos/a_flipped.png"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`PlanError::Collisions`] when two inputs would write the same output,
    /// or an output is an input; [`PlanError::OutDir`] when `out_dir` is a
    /// file, is not writable, or is missing and cannot be created there.
    /// Nothing has been written then.
    pub fn new<A: AsRef<OsStr>>(
        arguments: &[A],
        out_dir: Option<&Path>,
        options: FlipOptions,
    ) -> Result<Plan, PlanError> {
        if let Some(dir) = out_dir {
            check_out_dir(dir).map_err(|reason| PlanError::OutDir {
                path: dir.to_path_buf(),
                reason,
            })?;
        }
        let options = FlipOptions {
            create_folder: out_dir.is_some(),
            ..options
        };
        let mut inputs = Vec::new();
        let mut rejected = Vec::new();
        for argument in arguments {
            let argument = Path::new(argument.as_ref());
            match expand(argument) {
                Ok(found) => inputs.extend(found),
                Err(cause) => rejected.push(Rejected {
                    argument: argument.to_path_buf(),
                    cause,
                }),
            }
        }
        let mut seen = HashSet::new();
        inputs.retain(|input| seen.insert(identity(input)));

        let jobs: Vec<FlipJob> = inputs
            .into_iter()
            .map(|input| FlipJob {
                output: output_path(&input, options.format, out_dir),
                input,
                options,
            })
            .collect();
        let collisions = collisions(&jobs);
        if !collisions.is_empty() {
            return Err(PlanError::Collisions(collisions));
        }
        Ok(Plan { jobs, rejected })
    }
}

/// The output for `input`: `<stem>_flipped.<ext>` beside it or in `out_dir`.
///
/// ```
/// use std::path::Path;
/// use procpool_cli::flip::{Format, output_path};
/// let out = output_path(Path::new("data/euston.jpg"), Format::Pdf, None);
/// assert_eq!(out, Path::new("data/euston_flipped.pdf"));
/// let out = output_path(Path::new("data/euston.jpg"), Format::Jpg, Some(Path::new("out")));
/// assert_eq!(out, Path::new("out/euston_flipped.jpg"));
/// ```
pub fn output_path(input: &Path, format: Format, out_dir: Option<&Path>) -> PathBuf {
    let mut name = input
        .file_stem()
        .map_or_else(|| OsString::from("image"), OsStr::to_os_string);
    name.push("_flipped.");
    name.push(format.extension());
    match out_dir {
        Some(dir) => dir.join(name),
        None => input.with_file_name(name),
    }
}

/// Whether files can be written in `dir`, or `dir` created in its parent;
/// why not, in a few words.
fn check_out_dir(dir: &Path) -> Result<(), String> {
    use std::io::ErrorKind;
    if dir.as_os_str().is_empty() {
        return Err("empty path".into());
    }
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            writable(dir).map_err(|e| format!("folder is not writable: {e}"))
        }
        Ok(_) => Err("exists and is not a folder".into()),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            match std::fs::metadata(parent) {
                Ok(meta) if meta.is_dir() => writable(parent)
                    .map_err(|e| format!("cannot create it in {}: {e}", parent.display())),
                Ok(_) => Err(format!("its parent {} is not a folder", parent.display())),
                Err(e) if e.kind() == ErrorKind::NotFound => Err(format!(
                    "its parent folder {} does not exist",
                    parent.display()
                )),
                Err(e) => Err(format!("cannot create it: {e}")),
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Whether this process may create files in the folder `dir` (the kernel's
/// own check, `access(W_OK | X_OK)`; a read-only file system fails it too).
fn writable(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: a valid C string; the result is checked.
    if unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn expand(argument: &Path) -> Result<Vec<PathBuf>, String> {
    if argument.is_dir() {
        return folder_images(argument);
    }
    let pattern = argument.to_str().filter(|s| s.contains(['*', '?', '[']));
    match pattern {
        Some(pattern) if !argument.exists() => glob_matches(pattern),
        _ => Ok(vec![argument.to_path_buf()]),
    }
}

fn folder_images(folder: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(folder).map_err(|e| format!("cannot list folder: {e}"))?;
    let mut images = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list folder: {e}"))?;
        let path = entry.path();
        let name = entry.file_name();
        let hidden = name.as_encoded_bytes().starts_with(b".");
        let image_extension = path
            .extension()
            .is_some_and(|e| image::ImageFormat::from_extension(e).is_some());
        let earlier_output = path
            .file_stem()
            .is_some_and(|s| s.as_encoded_bytes().ends_with(b"_flipped"));
        if !hidden && image_extension && !earlier_output && path.is_file() {
            images.push(path);
        }
    }
    if images.is_empty() {
        return Err("folder holds no image files".into());
    }
    images.sort();
    Ok(images)
}

const MATCH_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: true,
};

fn glob_matches(pattern: &str) -> Result<Vec<PathBuf>, String> {
    let matches = if pattern.contains("**") {
        walk_matches(pattern)?
    } else {
        let paths =
            glob::glob_with(pattern, MATCH_OPTIONS).map_err(|e| format!("bad pattern: {e}"))?;
        let mut matches = Vec::new();
        for path in paths {
            matches.push(path.map_err(|e| format!("cannot search: {e}"))?);
        }
        matches
    };
    if matches.is_empty() {
        return Err("no file matches this pattern".into());
    }
    Ok(matches)
}

/// `**` patterns, walked by hand: the glob crate follows symbolic links to
/// folders, so a link to a parent makes it walk forever. As bash's
/// `globstar` does, links to folders are not entered (linked files match).
fn walk_matches(pattern: &str) -> Result<Vec<PathBuf>, String> {
    let compiled = glob::Pattern::new(pattern).map_err(|e| format!("bad pattern: {e}"))?;
    let wild = |c: &std::path::Component| {
        c.as_os_str()
            .to_str()
            .is_some_and(|s| s.contains(['*', '?', '[']))
    };
    let root: PathBuf = Path::new(pattern)
        .components()
        .take_while(|c| !wild(c))
        .collect();
    let mut matches = Vec::new();
    let mut folders = vec![root];
    while let Some(folder) = folders.pop() {
        let listed = if folder.as_os_str().is_empty() {
            std::fs::read_dir(".")
        } else {
            std::fs::read_dir(&folder)
        };
        let Ok(entries) = listed else { continue };
        for entry in entries.flatten() {
            let path = folder.join(entry.file_name());
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => folders.push(path),
                _ if compiled.matches_path_with(&path, MATCH_OPTIONS) && path.is_file() => {
                    matches.push(path)
                }
                _ => {}
            }
        }
    }
    matches.sort();
    Ok(matches)
}

/// A path with its folder resolved, so `a.jpg` and `./a.jpg` compare equal.
fn identity(path: &Path) -> PathBuf {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return path.to_path_buf();
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    match parent.canonicalize() {
        Ok(parent) => parent.join(name),
        Err(_) => path.to_path_buf(),
    }
}

fn collisions(jobs: &[FlipJob]) -> Vec<Collision> {
    let inputs: HashSet<PathBuf> = jobs.iter().map(|j| identity(&j.input)).collect();
    let mut by_output: HashMap<PathBuf, usize> = HashMap::new();
    let mut found: Vec<Collision> = Vec::new();
    for job in jobs {
        let key = identity(&job.output);
        let output_is_input = inputs.contains(&key);
        match by_output.get(&key) {
            Some(&i) => found[i].inputs.push(job.input.clone()),
            None => {
                by_output.insert(key, found.len());
                found.push(Collision {
                    output: job.output.clone(),
                    inputs: vec![job.input.clone()],
                    output_is_input,
                });
            }
        }
    }
    found.retain(|c| c.inputs.len() > 1 || c.output_is_input);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn folders_give_their_images_sorted_without_hidden_or_earlier_outputs() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.jpg",
            "a.PNG",
            ".hidden.jpg",
            "a_flipped.jpg",
            "notes.txt",
        ] {
            touch(&dir.path().join(name));
        }
        std::fs::create_dir(dir.path().join("sub.jpg")).unwrap();
        let found = folder_images(dir.path()).unwrap();
        let names: Vec<_> = found.iter().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(names, ["a.PNG", "b.jpg"]);
    }

    #[test]
    fn the_same_input_twice_is_one_job_and_two_for_one_output_collide() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.jpg"), dir.path().join("a.png"));
        touch(&a);
        touch(&b);
        let dotted = dir.path().join(".").join("a.jpg");
        let plan = Plan::new(&[&a, &dotted], None, FlipOptions::default()).unwrap();
        assert_eq!(plan.jobs.len(), 1);
        let Err(PlanError::Collisions(c)) = Plan::new(&[&a, &b], None, FlipOptions::default())
        else {
            panic!("a.jpg and a.png both give a_flipped.pdf")
        };
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].inputs, [a, b]);
    }

    #[test]
    fn an_output_that_is_an_input_collides() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jpg");
        let a_out = dir.path().join("a_flipped.jpg");
        touch(&a);
        touch(&a_out);
        let options = FlipOptions {
            format: Format::Jpg,
            ..FlipOptions::default()
        };
        let Err(PlanError::Collisions(c)) = Plan::new(&[&a, &a_out], None, options) else {
            panic!("a_flipped.jpg is an input and an output")
        };
        assert!(c[0].output_is_input, "{c:?}");
        assert!(c[0].to_string().ends_with("which is also an input"));
    }
}
