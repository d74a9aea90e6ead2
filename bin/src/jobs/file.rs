//! Job files: one shell command per line, numbered as dSQ numbers them.

use std::path::{Path, PathBuf};

/// One line of a job file that is a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The zero-based line number in the job file, as dSQ's `Job_ID` and a
    /// Slurm array index: blank and comment lines keep their numbers.
    pub id: u64,
    /// The command, the line without surrounding white space; run by `sh -c`.
    pub command: String,
}

/// Why a job file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobFileError {
    /// The file cannot be read.
    #[error("cannot read job file {}", path.display())]
    Read {
        /// The job file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A line cannot be passed to `sh -c`.
    #[error("job file {}, line {} (Job_ID {id}): {reason}", path.display(), id + 1)]
    Line {
        /// The job file.
        path: PathBuf,
        /// The line's zero-based number.
        id: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Job_IDs asked for are not commands of the file.
    #[error(
        "job file {} has no job with Job_ID {ids} (such a line is blank, a comment, or past the end)",
        path.display()
    )]
    NoSuchJobs {
        /// The job file.
        path: PathBuf,
        /// The missing ids, in Slurm's array syntax.
        ids: String,
    },
    /// Every line is blank or a comment.
    #[error("job file {} has no jobs: every line is blank or a comment", path.display())]
    Empty {
        /// The job file.
        path: PathBuf,
    },
}

/// The longest command line a job file may hold: Linux passes at most 128 KiB
/// in one argument (`MAX_ARG_STRLEN`), and a job is `sh -c LINE`.
pub const MAX_LINE: usize = 128 * 1024;

const TOO_LONG: &str = "is longer than 128 KiB, the most `sh -c` takes in one argument";

/// The jobs of a job file, in line order.
///
/// ```
/// use procpool_cli::jobs::JobFile;
/// let file = JobFile::parse("jobs.txt", b"# flip the images\necho a\n\n  echo b  \n").unwrap();
/// let ids: Vec<u64> = file.jobs.iter().map(|j| j.id).collect();
/// assert_eq!(ids, [1, 3]);
/// assert_eq!(file.jobs[1].command, "echo b");
/// ```
#[derive(Debug, Clone)]
pub struct JobFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its commands; lines that are blank or start with `#` (after white
    /// space) are skipped but keep their numbers.
    pub jobs: Vec<Job>,
}

impl JobFile {
    /// Reads and parses a job file.
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse), and if the file cannot be read.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, JobFileError> {
        use std::io::BufRead;
        let path = path.as_ref();
        let read_error = |source| JobFileError::Read {
            path: path.to_path_buf(),
            source,
        };
        // Line by line, each at most MAX_LINE: an endless stream of one line
        // (/dev/zero) is refused at once instead of filling memory.
        let file = std::fs::File::open(path).map_err(read_error)?;
        let mut reader = std::io::BufReader::new(file);
        let mut bytes = Vec::new();
        for id in 0.. {
            let start = bytes.len();
            let read = std::io::Read::take(&mut reader, MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut bytes)
                .map_err(read_error)?;
            if read == 0 {
                break;
            }
            let line = &bytes[start..];
            if line.len() > MAX_LINE && !line.ends_with(b"\n") {
                return Err(JobFileError::Line {
                    path: path.to_path_buf(),
                    id,
                    reason: TOO_LONG,
                });
            }
        }
        Self::parse(path, &bytes)
    }

    /// Parses the contents of a job file.
    ///
    /// # Errors
    ///
    /// If a command line is not UTF-8 or holds a NUL byte (neither can be
    /// recorded in the status file or passed to `sh`), or there is no job.
    pub fn parse(path: impl AsRef<Path>, bytes: &[u8]) -> Result<Self, JobFileError> {
        let path = path.as_ref().to_path_buf();
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let mut jobs = Vec::new();
        if !bytes.is_empty() {
            for (id, line) in body.split(|&b| b == b'\n').enumerate() {
                let id = id as u64;
                let fail = |reason| JobFileError::Line {
                    path: path.clone(),
                    id,
                    reason,
                };
                if line.len() > MAX_LINE {
                    return Err(fail(TOO_LONG));
                }
                let line = std::str::from_utf8(line).map_err(|_| fail("not valid UTF-8"))?;
                let command = line.trim();
                if command.is_empty() || command.starts_with('#') {
                    continue;
                }
                if command.contains('\0') {
                    return Err(fail("holds a NUL byte"));
                }
                jobs.push(Job {
                    id,
                    command: command.to_string(),
                });
            }
        }
        if jobs.is_empty() {
            return Err(JobFileError::Empty { path });
        }
        Ok(JobFile { path, jobs })
    }

    /// The jobs with these `Job_ID`s, as `--only` and Slurm array tasks ask.
    ///
    /// ```
    /// let file = procpool_cli::jobs::JobFile::parse("j", b"a\n\nc\n").unwrap();
    /// assert_eq!(file.select(&[2]).unwrap()[0].command, "c");
    /// assert!(file.select(&[0, 1]).unwrap_err().to_string().contains("Job_ID 1 "));
    /// ```
    ///
    /// # Errors
    ///
    /// If any id is not a command line of the file; the error names them all.
    pub fn select(&self, ids: &[u64]) -> Result<Vec<&Job>, JobFileError> {
        let missing: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|&id| self.get(id).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(JobFileError::NoSuchJobs {
                path: self.path.clone(),
                ids: super::format_array(&missing),
            });
        }
        Ok(ids.iter().filter_map(|&id| self.get(id)).collect())
    }

    /// The job with this `Job_ID`, if that line is a command.
    pub fn get(&self, id: u64) -> Option<&Job> {
        self.jobs
            .binary_search_by_key(&id, |j| j.id)
            .ok()
            .map(|i| &self.jobs[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<(u64, String)> {
        JobFile::parse("j", text.as_bytes())
            .unwrap()
            .jobs
            .into_iter()
            .map(|j| (j.id, j.command))
            .collect()
    }

    #[test]
    fn ids_are_zero_based_line_numbers_with_blanks_and_comments_counted() {
        let text = "a\n\n# c\n  #indented comment\nb\r\n\t\nc";
        assert_eq!(
            ids(text),
            [(0, "a".into()), (4, "b".into()), (6, "c".into())]
        );
    }

    #[test]
    fn a_hash_inside_a_command_is_the_shells_business() {
        assert_eq!(ids("echo a # b\n"), [(0, "echo a # b".into())]);
    }

    #[test]
    fn a_file_without_jobs_is_an_error_naming_it() {
        for text in ["", "\n", "# only\n\n"] {
            let e = JobFile::parse("empty.txt", text.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("empty.txt has no jobs"), "{e}");
        }
    }

    #[test]
    fn bad_lines_are_named_by_line_and_job_id() {
        let e = JobFile::parse("j.txt", b"ok\n\xff\xfe\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "job file j.txt, line 2 (Job_ID 1): not valid UTF-8"
        );
        let e = JobFile::parse("j.txt", b"a\0b\n").unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
    }

    #[test]
    fn get_finds_commands_only() {
        let file = JobFile::parse("j", b"a\n\nb\n").unwrap();
        assert_eq!(file.get(2).unwrap().command, "b");
        assert!(file.get(1).is_none() && file.get(9).is_none());
    }
}
