//! The status TSV: dSQ's columns, one row per finished job, written and
//! flushed as each job ends; and reading it back for `--resume`.
//!
//! Rows are tab-separated and unquoted, as dSQ writes them. The last column
//! (`Job`) is the command as written in the job file, except that a tab,
//! carriage return or newline in it is written `\t`, `\r`, `\n` (and a
//! backslash before one of `t`, `r`, `n`, `\\` or those characters is
//! doubled), so every row has exactly seven columns and reads back to the
//! same command. Other backslashes stay as they are, as dSQ writes them.

use std::collections::HashSet;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::file::Job;

/// The header row procpool writes (dSQ writes none, and reads either way).
pub const HEADER: [&str; 7] = [
    "Job_ID",
    "Exit_Code",
    "Hostname",
    "Time_Started",
    "Time_Ended",
    "Time_Elapsed",
    "Job",
];

/// The `strftime` format of `Time_Started` and `Time_Ended`, local time.
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// One row of the status file.
///
/// ```
/// use procpool_cli::jobs::StatusRow;
/// let line = "3\t0\tnode7\t2024-05-01 12:00:00\t2024-05-01 12:00:02\t2.013\techo\\thi";
/// let row = StatusRow::parse(line).unwrap();
/// assert_eq!((row.job_id, row.exit_code, row.job.as_str()), (3, 0, "echo\thi"));
/// assert_eq!(row.to_string(), line);
/// assert_eq!(row.to_string().split('\t').count(), 7);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRow {
    /// The job's zero-based line number in the job file.
    pub job_id: u64,
    /// The exit status of `sh -c`, or 128 + N if a signal N killed it.
    pub exit_code: i32,
    /// Where it ran.
    pub hostname: String,
    /// When it started, local time, [`TIME_FORMAT`].
    pub time_started: String,
    /// When it ended, local time, [`TIME_FORMAT`].
    pub time_ended: String,
    /// How long it ran, in seconds.
    pub time_elapsed: f64,
    /// The command.
    pub job: String,
}

/// Why a line is not a status row: the column that is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedRow(String);

impl StatusRow {
    /// Parses one line (without its newline).
    ///
    /// # Errors
    ///
    /// [`MalformedRow`], naming the column that is missing or wrong.
    pub fn parse(line: &str) -> Result<Self, MalformedRow> {
        Self::parse_fields(line).map_err(MalformedRow)
    }

    fn parse_fields(line: &str) -> Result<Self, String> {
        let fields: Vec<&str> = line.splitn(HEADER.len(), '\t').collect();
        if fields.len() < HEADER.len() {
            return Err(format!(
                "{} tab-separated columns where {} are needed ({})",
                fields.len(),
                HEADER.len(),
                HEADER.join(", ")
            ));
        }
        let bad =
            |column: usize, why: &str| format!("{} {:?} {why}", HEADER[column], fields[column]);
        let time = |column: usize| {
            jiff::civil::DateTime::strptime(TIME_FORMAT, fields[column])
                .map(|_| fields[column].to_string())
                .map_err(|_| bad(column, "is not a time like 2024-05-01 12:00:00"))
        };
        let time_elapsed: f64 = fields[5]
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite() && *s >= 0.0)
            .ok_or_else(|| bad(5, "is not a number of seconds"))?;
        if fields[6].is_empty() {
            return Err(bad(6, "is empty"));
        }
        Ok(StatusRow {
            job_id: fields[0]
                .parse()
                .map_err(|_| bad(0, "is not a whole number"))?,
            exit_code: fields[1]
                .parse()
                .map_err(|_| bad(1, "is not a whole number"))?,
            hostname: unescape(fields[2]),
            time_started: time(3)?,
            time_ended: time(4)?,
            time_elapsed,
            job: unescape(fields[6]),
        })
    }
}

/// Whether a backslash before `next` must be doubled so that [`unescape`]
/// leaves it alone.
fn needs_doubling(next: Option<char>) -> bool {
    matches!(next, Some('\\' | 't' | 'r' | 'n' | '\t' | '\r' | '\n'))
}

/// The `Job` column of a command: tab, CR and LF as `\t`, `\r`, `\n`, and
/// a backslash doubled where it would otherwise read as an escape.
pub fn escape(command: &str) -> String {
    let mut out = String::with_capacity(command.len());
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\\' if needs_doubling(chars.peek().copied()) => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

/// The command of a `Job` column: the inverse of [`escape`]; a backslash
/// before anything but `t`, `r`, `n` or `\\` is itself.
pub fn unescape(column: &str) -> String {
    let mut out = String::with_capacity(column.len());
    let mut chars = column.chars().peekable();
    while let Some(c) = chars.next() {
        let decoded = match (c, chars.peek()) {
            ('\\', Some('t')) => '\t',
            ('\\', Some('r')) => '\r',
            ('\\', Some('n')) => '\n',
            ('\\', Some('\\')) => '\\',
            (c, _) => {
                out.push(c);
                continue;
            }
        };
        chars.next();
        out.push(decoded);
    }
    out
}

impl fmt::Display for StatusRow {
    /// The TSV line, without its newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\t{}\t{}\t{}\t{}\t{:.3}\t{}",
            self.job_id,
            self.exit_code,
            // A host name comes from the system or $HOSTNAME: escaped too.
            escape(&self.hostname),
            self.time_started,
            self.time_ended,
            self.time_elapsed,
            escape(&self.job)
        )
    }
}

/// Formats a time as the status file does: local time, [`TIME_FORMAT`].
///
/// ```
/// let text = procpool_cli::jobs::format_time(std::time::SystemTime::now());
/// assert_eq!(text.len(), "2024-05-01 12:00:00".len());
/// ```
pub fn format_time(time: SystemTime) -> String {
    match jiff::ZonedDateTime::try_from(time) {
        Ok(local) => local.strftime(TIME_FORMAT).to_string(),
        Err(_) => "1970-01-01 00:00:00".to_string(),
    }
}

/// Why a status file cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// The file cannot be read.
    #[error("cannot read status file {}", path.display())]
    Read {
        /// The status file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A line is not a status row; the file was left as it is.
    #[error("status file {} line {line} is not a status row: {reason}; the file was left untouched", path.display())]
    Malformed {
        /// The status file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The file cannot be created or written.
    #[error("cannot write status file {}", path.display())]
    Write {
        /// The status file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// A status file as read back, for `--resume`.
///
/// ```
/// use procpool_cli::jobs::{JobFile, StatusFile};
/// let status = StatusFile::parse(
///     "s.tsv",
///     "0\t0\th\t2024-05-01 12:00:00\t2024-05-01 12:00:01\t1.0\techo a\n\
///      1\t1\th\t2024-05-01 12:00:00\t2024-05-01 12:00:01\t1.0\tfalse\n",
/// )
/// .unwrap();
/// let file = JobFile::parse("j", b"echo a\nfalse\necho c\n").unwrap();
/// let todo: Vec<u64> = status.pending(&file.jobs).iter().map(|j| j.id).collect();
/// assert_eq!(todo, [1, 2]);
/// ```
#[derive(Debug, Clone)]
pub struct StatusFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Whether its first line is procpool's header row.
    pub has_header: bool,
    /// Its rows in file order; a job run more than once has several.
    pub rows: Vec<StatusRow>,
}

impl StatusFile {
    /// Reads and checks a status file.
    ///
    /// # Errors
    ///
    /// If it cannot be read or a line is not a status row.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, StatusError> {
        let path = path.as_ref();
        let text = std::fs::read(path).map_err(|source| StatusError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(text).map_err(|e| {
            let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            StatusError::Malformed {
                path: path.to_path_buf(),
                line,
                reason: "not valid UTF-8".to_string(),
            }
        })?;
        Self::parse(path, &text)
    }

    /// Parses the contents of a status file, with or without the header row.
    /// Empty lines are ignored.
    ///
    /// # Errors
    ///
    /// If a line is not a status row (a header is one only on line 1).
    pub fn parse(path: impl AsRef<Path>, text: &str) -> Result<Self, StatusError> {
        let path = path.as_ref().to_path_buf();
        let mut rows = Vec::new();
        let mut has_header = false;
        for (i, line) in text.lines().enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            if i == 0 && line.starts_with("Job_ID") {
                if line.split('\t').ne(HEADER) {
                    return Err(StatusError::Malformed {
                        path,
                        line: 1,
                        reason: format!("a header row other than {:?}", HEADER.join("\t")),
                    });
                }
                has_header = true;
                continue;
            }
            let row = StatusRow::parse(line).map_err(|reason| StatusError::Malformed {
                path: path.clone(),
                line: i + 1,
                reason: reason.to_string(),
            })?;
            rows.push(row);
        }
        Ok(StatusFile {
            path,
            has_header,
            rows,
        })
    }

    /// Whether the file at `path` holds anything beyond an optional header
    /// row and blank lines: a record that a fresh run must not replace
    /// unasked. A missing file holds nothing.
    ///
    /// # Errors
    ///
    /// If it exists but cannot be read (a directory, say).
    pub fn holds_rows(path: impl AsRef<Path>) -> Result<bool, StatusError> {
        let path = path.as_ref();
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(source) => {
                return Err(StatusError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let header = HEADER.join("\t");
        Ok(bytes
            .split(|&b| b == b'\n')
            .enumerate()
            .map(|(i, line)| (i, line.strip_suffix(b"\r").unwrap_or(line)))
            // Blank lines and a header on line 1 are not rows.
            .any(|(i, line)| !(line.is_empty() || i == 0 && line == header.as_bytes())))
    }

    /// `(Job_ID, command)` of every row with `Exit_Code` 0.
    pub fn succeeded(&self) -> HashSet<(u64, &str)> {
        self.rows
            .iter()
            .filter(|r| r.exit_code == 0)
            .map(|r| (r.job_id, r.job.as_str()))
            .collect()
    }

    /// The jobs that still need to run: those without a row that has
    /// `Exit_Code` 0 and the same `Job_ID` and command. A job whose line was
    /// edited since it succeeded runs again.
    pub fn pending<'j>(&self, jobs: impl IntoIterator<Item = &'j Job>) -> Vec<&'j Job> {
        let done = self.succeeded();
        jobs.into_iter()
            .filter(|j| !done.contains(&(j.id, j.command.as_str())))
            .collect()
    }
}

/// Writes status rows, one `write` per row, so each row is in the file as
/// soon as its job ends and a crash never leaves half a row behind.
#[derive(Debug)]
pub struct StatusWriter {
    path: PathBuf,
    file: File,
}

impl StatusWriter {
    /// Creates (or truncates) the file and writes the header row.
    ///
    /// # Errors
    ///
    /// If the file cannot be created or written.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, StatusError> {
        let path = path.as_ref().to_path_buf();
        let fail = |source| StatusError::Write {
            path: path.clone(),
            source,
        };
        let mut file = File::create(&path).map_err(fail)?;
        if let Err(e) = file.write_all(header_line().as_bytes()) {
            // No empty or half header left behind (a full disk, say).
            let _ = std::fs::remove_file(&path);
            return Err(fail(e));
        }
        Ok(StatusWriter { path, file })
    }

    /// Opens the file for appending, as `--resume` and Slurm array tasks do.
    /// A file that does not exist yet gets the header row first; several
    /// processes may do this at once and exactly one header is written.
    ///
    /// # Errors
    ///
    /// If the file cannot be created, opened or written.
    pub fn append(path: impl AsRef<Path>) -> Result<Self, StatusError> {
        let path = path.as_ref().to_path_buf();
        let fail = |source| StatusError::Write {
            path: path.clone(),
            source,
        };
        if !path.exists() {
            create_with_header(&path).map_err(fail)?;
        }
        let mut file = OpenOptions::new().append(true).open(&path).map_err(fail)?;
        let len = file.metadata().map_err(fail)?.len();
        if len > 0 && !ends_with_newline(&path, len).map_err(fail)? {
            file.write_all(b"\n").map_err(fail)?;
        }
        Ok(StatusWriter { path, file })
    }

    /// Where the rows go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one row.
    ///
    /// # Errors
    ///
    /// If the row cannot be written.
    pub fn write(&mut self, row: &StatusRow) -> Result<(), StatusError> {
        let line = format!("{row}\n");
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|source| StatusError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

fn header_line() -> String {
    format!("{}\n", HEADER.join("\t"))
}

/// Puts a file holding only the header at `path` unless one appears there
/// first: the header is written to a private file that is then hard-linked
/// into place, which fails rather than replaces when `path` exists. The
/// private file has a random name of its own (created exclusively, with
/// this host's name for whoever sees it), so tasks on several nodes of a
/// shared file system never write the same one, even with the same PID.
fn create_with_header(path: &Path) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.{}.", crate::tasks::hostname()))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    staging.write_all(header_line().as_bytes())?;
    // Removed when `staging` is dropped, whatever happens here.
    let linked = std::fs::hard_link(staging.path(), path);
    drop(staging);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        // File systems without hard links: create it directly instead.
        Err(_) => match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(mut file) => file.write_all(header_line().as_bytes()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        },
    }
}

fn ends_with_newline(path: &Path, len: u64) -> io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: &str = "12\t143\tnode1\t2024-05-01 12:00:00\t2024-05-01 12:01:00\t60.000\tsleep 100";

    #[test]
    fn the_header_is_staged_in_a_file_no_other_node_can_be_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.tsv");
        // Another node's task with this PID, staging under the old name.
        let theirs = dir
            .path()
            .join(format!(".s.tsv.{}.tmp", std::process::id()));
        std::fs::write(&theirs, "theirs").unwrap();
        create_with_header(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), header_line());
        assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "theirs");
        // Nothing of its own is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn rows_round_trip() {
        let row = StatusRow::parse(ROW).unwrap();
        assert_eq!(row.exit_code, 143);
        assert_eq!(row.to_string(), ROW);
    }

    #[test]
    fn commands_with_tabs_newlines_and_backslashes_round_trip_in_seven_columns() {
        let commands = [
            "printf 'a\tb'",
            "a\tb\r\nc",
            "echo \\t \\\\ \\n \\. end\\",
            "\\\t\\",
            "sed 's/\\./,/' x",
        ];
        for command in commands {
            let mut row = StatusRow::parse(ROW).unwrap();
            row.job = command.to_string();
            let line = row.to_string();
            assert_eq!(line.split('\t').count(), 7, "{line:?}");
            assert!(!line.contains(['\n', '\r']), "{line:?}");
            assert_eq!(StatusRow::parse(&line).unwrap().job, command, "{line:?}");
        }
        // Backslashes that escape nothing are written as dSQ writes them.
        assert_eq!(escape("sed 's/\\./,/'"), "sed 's/\\./,/'");
    }

    #[test]
    fn holding_rows_means_anything_beyond_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.tsv");
        assert!(!StatusFile::holds_rows(&path).unwrap(), "missing");
        for (text, holds) in [
            ("", false),
            ("\n", false),
            (&header_line() as &str, false),
            (&format!("{}{ROW}\n", header_line()), true),
            ("garbage", true),
        ] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(StatusFile::holds_rows(&path).unwrap(), holds, "{text:?}");
        }
        assert!(StatusFile::holds_rows(dir.path()).is_err(), "a directory");
    }

    #[test]
    fn bad_rows_name_the_column() {
        let cases = [
            (
                "x\t0\th\t2024-05-01 12:00:00\t2024-05-01 12:00:00\t1\tc",
                "Job_ID \"x\"",
            ),
            (
                "1\tok\th\t2024-05-01 12:00:00\t2024-05-01 12:00:00\t1\tc",
                "Exit_Code \"ok\"",
            ),
            (
                "1\t0\th\tyesterday\t2024-05-01 12:00:00\t1\tc",
                "Time_Started",
            ),
            (
                "1\t0\th\t2024-05-01 12:00:00\t2024-05-01 12:00:00\t-1\tc",
                "Time_Elapsed",
            ),
            (
                "1\t0\th\t2024-05-01 12:00:00\t2024-05-01 12:00:00\t1\t",
                "Job \"\"",
            ),
            ("1\t0\th", "3 tab-separated columns"),
        ];
        for (line, expected) in cases {
            let e = StatusRow::parse(line).unwrap_err().to_string();
            assert!(e.contains(expected), "{line:?}: {e}");
        }
    }

    #[test]
    fn a_header_is_optional_but_must_be_ours() {
        let with = format!("{}{ROW}\n", header_line());
        let parsed = StatusFile::parse("s", &with).unwrap();
        assert!(parsed.has_header);
        assert_eq!(parsed.rows.len(), 1);
        let without = StatusFile::parse("s", ROW).unwrap();
        assert!(!without.has_header);
        assert_eq!(without.rows, parsed.rows);
        let e = StatusFile::parse("s", "Job_ID\tExit\n").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        let text = format!("{}{ROW}\n\ngarbage\n", header_line());
        let e = StatusFile::parse("st.tsv", &text).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("status file st.tsv line 4 is not a status row"),
            "{e}"
        );
    }

    #[test]
    fn pending_matches_on_id_and_command_and_success() {
        let ok = |id, cmd: &str| {
            format!("{id}\t0\th\t2024-05-01 12:00:00\t2024-05-01 12:00:00\t1\t{cmd}\n")
        };
        let text = [ok(0, "a"), ok(1, "old b"), ok(5, "c")].concat()
            + "2\t1\th\t2024-05-01 12:00:00\t2024-05-01 12:00:00\t1\tc\n";
        let status = StatusFile::parse("s", &text).unwrap();
        let jobs = super::super::JobFile::parse("j", b"a\nnew b\nc\n")
            .unwrap()
            .jobs;
        let pending: Vec<u64> = status.pending(&jobs).iter().map(|j| j.id).collect();
        assert_eq!(pending, [1, 2]);
    }

    #[test]
    fn appending_writes_one_header_and_repairs_a_missing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.tsv");
        let row = StatusRow::parse(ROW).unwrap();
        StatusWriter::append(&path).unwrap().write(&row).unwrap();
        StatusWriter::append(&path).unwrap().write(&row).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}{ROW}\n{ROW}\n", header_line()));
        std::fs::write(&path, ROW).unwrap();
        StatusWriter::append(&path).unwrap().write(&row).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{ROW}\n{ROW}\n"));
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no staging file is left behind");
    }
}
