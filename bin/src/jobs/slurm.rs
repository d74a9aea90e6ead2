//! The Slurm job-array script, as dSQ generates it: one array task per job,
//! its index the job's `Job_ID`, each task running its line through procpool.

use std::fmt::Write;
use std::path::{Path, PathBuf};

/// `#SBATCH` settings for the array; `None` leaves Slurm's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmOptions {
    /// `--job-name`; default `procpool-` and the job file's stem.
    pub job_name: Option<String>,
    /// `--partition`, e.g. `day` or `day,week`.
    pub partition: Option<String>,
    /// `--time` per array task, e.g. `30`, `1:00:00`, `1-00:00:00`.
    pub time: Option<String>,
    /// `--mem-per-cpu`, e.g. `4G` or `500M`.
    pub mem_per_cpu: Option<String>,
    /// `--cpus-per-task`.
    pub cpus_per_task: Option<u32>,
    /// At most this many array tasks at once (`--array ...%N`).
    pub max_running: Option<u32>,
    /// More sbatch arguments, as given (`--account=lab`, `--qos`, `high`...),
    /// on one `#SBATCH` line.
    pub extra: Vec<String>,
}

/// What the generated script runs for each array task.
#[derive(Debug, Clone)]
pub struct SlurmScript<'a> {
    /// The procpool program the tasks run (an absolute path).
    pub program: PathBuf,
    /// The job file (an absolute path).
    pub job_file: PathBuf,
    /// The `Job_ID`s to run: the array indices.
    pub ids: &'a [u64],
    /// The status file every task appends its row to.
    pub status: PathBuf,
    /// The directory of the jobs' `<Job_ID>.out` and `.err` files; `None`
    /// discards their output.
    pub logs: Option<PathBuf>,
    /// More `procpool jobs` options each task passes on, e.g. `--timeout 60`.
    pub pass_on: Vec<String>,
    /// The `#SBATCH` settings.
    pub options: SlurmOptions,
    /// The cluster's `MaxArraySize`: every array index is below it.
    pub max_array_size: u64,
    /// Where the `Job_ID`s are listed, one a line, when they do not [`fit`]
    /// an array of their own: array task `I` then runs the IDs on lines
    /// `I*C+1` to `I*C+C`, `C` as small as keeps the array below
    /// `max_array_size`. The caller writes the file ([`write_id_list`]).
    ///
    /// [`fit`]: SlurmScript::ids_fit
    pub id_list: Option<PathBuf>,
}

/// The longest `--array` value Slurm takes is 4,095 characters; this leaves
/// room for `%N`.
const MAX_ARRAY_TEXT: usize = 4000;

/// Writes `ids` one a line to `path`, for [`SlurmScript::id_list`].
///
/// # Errors
///
/// If the file cannot be written.
pub fn write_id_list(path: &Path, ids: &[u64]) -> std::io::Result<()> {
    let mut text = String::with_capacity(ids.len() * 7);
    for id in ids {
        writeln!(text, "{id}").expect("writing to a String");
    }
    std::fs::write(path, text)
}

/// Why a Slurm script cannot be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SlurmError {
    /// A setting would not survive on an `#SBATCH` line, or is not in Slurm's form.
    #[error("--{option} {value:?} {why}")]
    Option {
        /// The option's name.
        option: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A path cannot be quoted for the shell.
    #[error("path {} cannot be quoted for the shell: {reason}", path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// There is no job to put in the array.
    #[error("no job to put in the array")]
    Empty,
    /// The IDs do not fit an array of their own and no ID list was given.
    #[error(
        "the Job_IDs do not fit one Slurm array (MaxArraySize {max_array_size}) without an ID list"
    )]
    NeedsIdList {
        /// The cluster's `MaxArraySize`.
        max_array_size: u64,
    },
}

impl SlurmScript<'_> {
    /// Whether `ids` can be the array's indices themselves: each below
    /// `max_array_size`, and the `--array` text short enough for Slurm.
    ///
    /// ```
    /// use procpool_cli::jobs::SlurmScript;
    /// assert!(SlurmScript::ids_fit(&[0, 1, 2, 900], 1001));
    /// assert!(!SlurmScript::ids_fit(&[5, 1001], 1001));
    /// ```
    pub fn ids_fit(ids: &[u64], max_array_size: u64) -> bool {
        ids.last().is_none_or(|&last| last < max_array_size)
            && format_array(ids).len() <= MAX_ARRAY_TEXT
    }

    /// The script's text.
    ///
    /// ```
    /// use procpool_cli::jobs::{SlurmOptions, SlurmScript};
    /// let script = SlurmScript {
    ///     program: "/opt/procpool".into(),
    ///     job_file: "/home/me/jobs.txt".into(),
    ///     ids: &[0, 1, 2, 4],
    ///     status: "/home/me/jobs_status.tsv".into(),
    ///     logs: Some("/home/me/jobs_logs".into()),
    ///     pass_on: vec![],
    ///     options: SlurmOptions { partition: Some("day".into()), ..Default::default() },
    ///     max_array_size: 1001,
    ///     id_list: None,
    /// }
    /// .render()
    /// .unwrap();
    /// assert!(script.starts_with("#!/bin/bash\n#SBATCH --array 0-2,4\n"));
    /// assert!(script.contains("#SBATCH --partition day\n"));
    /// assert!(script.contains("--only \"$SLURM_ARRAY_TASK_ID\""));
    /// ```
    ///
    /// # Errors
    ///
    /// If a setting is malformed or would break its `#SBATCH` line, a path
    /// cannot be quoted, or `ids` is empty.
    pub fn render(&self) -> Result<String, SlurmError> {
        if self.ids.is_empty() {
            return Err(SlurmError::Empty);
        }
        let o = &self.options;
        let stem = self
            .job_file
            .file_stem()
            .map_or_else(|| "jobs".into(), |s| s.to_string_lossy());
        let job_name = o
            .job_name
            .clone()
            .unwrap_or_else(|| format!("procpool-{}", sanitize(&stem)));
        let direct = Self::ids_fit(self.ids, self.max_array_size);
        let listed = match (&self.id_list, direct) {
            (_, true) => None,
            (Some(list), false) => Some(list),
            (None, false) => {
                return Err(SlurmError::NeedsIdList {
                    max_array_size: self.max_array_size,
                });
            }
        };
        // With a list: as few IDs per task as keep the indices below the limit.
        let per_task = (self.ids.len() as u64).div_ceil(self.max_array_size.max(1));
        let tasks = (self.ids.len() as u64).div_ceil(per_task);
        let mut array = match listed {
            None => format_array(self.ids),
            Some(_) => format!("0-{}", tasks - 1),
        };
        if let Some(n) = o.max_running {
            write!(array, "%{n}").expect("writing to a String");
        }
        let mut s = String::from("#!/bin/bash\n");
        let mut sbatch = |key: &str, value: &str| {
            writeln!(s, "#SBATCH --{key} {value}").expect("writing to a String")
        };
        sbatch("array", &array);
        sbatch("job-name", &sbatch_word("job-name", &job_name)?);
        sbatch(
            "output",
            &sbatch_word("output", &format!("{job_name}-%A_%a.out"))?,
        );
        sbatch("ntasks", "1");
        if let Some(p) = &o.partition {
            let p = check(
                "partition",
                p,
                "may hold only names of letters, digits, _ . - joined by commas",
                |c| c.is_ascii_alphanumeric() || "_.-,".contains(c),
            )?;
            sbatch("partition", &p);
        }
        if let Some(t) = &o.time {
            sbatch("time", &check_time(t)?);
        }
        if let Some(m) = &o.mem_per_cpu {
            sbatch("mem-per-cpu", &check_memory(m)?);
        }
        if let Some(c) = o.cpus_per_task {
            sbatch("cpus-per-task", &c.to_string());
        }
        if !o.extra.is_empty() {
            let words = o
                .extra
                .iter()
                .map(|arg| sbatch_word("sbatch", arg))
                .collect::<Result<Vec<_>, _>>()?;
            writeln!(s, "#SBATCH {}", words.join(" ")).expect("writing to a String");
        }
        let jobs = self.ids.len();
        let mut command = vec![
            quote(&self.program)?,
            "-p".into(),
            "1".into(),
            "jobs".into(),
            quote(&self.job_file)?,
            "--only".into(),
            if listed.is_some() {
                "\"$ids\"".into()
            } else {
                "\"$SLURM_ARRAY_TASK_ID\"".into()
            },
            "--array-task".into(),
            "--status".into(),
            quote(&self.status)?,
        ];
        match &self.logs {
            Some(dir) => command.extend(["--logs".into(), quote(dir)?]),
            None => command.push("--no-logs".into()),
        }
        for arg in &self.pass_on {
            command.push(shlex::try_quote(arg).map_or_else(|_| arg.clone(), |q| q.into_owned()));
        }
        write!(
            s,
            "\n# Generated by procpool jobs --slurm: {jobs} job(s) of {}.\n",
            self.job_file.display()
        )
        .expect("writing to a String");
        match listed {
            None => s.push_str(
                "# Array task N runs the job whose Job_ID is N (line N+1 of the job file) and\n\
                 # appends its row to the status file.\n",
            ),
            Some(list) => {
                let first = format!("$((SLURM_ARRAY_TASK_ID * {per_task} + 1))");
                let last = format!("$((SLURM_ARRAY_TASK_ID * {per_task} + {per_task}))");
                write!(
                    s,
                    "# The Job_IDs do not fit an array of their own (MaxArraySize {}): array task\n\
                     # N runs the {per_task} Job_ID(s) on lines N*{per_task}+1 to N*{per_task}+{per_task} of the list below,\n\
                     # each appending its row to the status file.\n\
                     ids=$(sed -n \"{first},{last}p\" {} | paste -sd, -)\n",
                    self.max_array_size,
                    quote(list)?
                )
                .expect("writing to a String");
            }
        }
        writeln!(s, "exec {}", command.join(" ")).expect("writing to a String");
        Ok(s)
    }
}

/// Collapses sorted ids into Slurm's array syntax, as dSQ does.
///
/// ```
/// assert_eq!(procpool_cli::jobs::format_array(&[0, 1, 2, 4, 6, 7]), "0-2,4,6-7");
/// ```
pub fn format_array(ids: &[u64]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < ids.len() {
        let start = ids[i];
        let mut end = start;
        while i + 1 < ids.len() && ids[i + 1] == end + 1 {
            i += 1;
            end = ids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            write!(out, "{start}").expect("writing to a String");
        } else {
            write!(out, "{start}-{end}").expect("writing to a String");
        }
        i += 1;
    }
    out
}

/// Parses Slurm's array syntax (`3`, `0-9,12`) into sorted, distinct ids.
///
/// ```
/// assert_eq!(procpool_cli::jobs::parse_array("4,0-2,2").unwrap(), [0, 1, 2, 4]);
/// assert!(procpool_cli::jobs::parse_array("3-1").is_err());
/// ```
///
/// # Errors
///
/// [`BadArray`], naming the part that is not a number or a rising range.
pub fn parse_array(text: &str) -> Result<Vec<u64>, BadArray> {
    parse_array_parts(text).map_err(BadArray)
}

/// Why a `--only`/`--array` list of job ids cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadArray(String);

fn parse_array_parts(text: &str) -> Result<Vec<u64>, String> {
    // Slurm's own largest MaxArraySize is 4000001.
    const MAX_IDS: u64 = 4_000_001;
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("{s:?} in {text:?} is not a Job_ID (a whole number from 0)"))
    };
    let mut ids = Vec::new();
    for part in text.split(',') {
        let (start, end) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => {
                let n = number(part)?;
                (n, n)
            }
        };
        if start > end {
            return Err(format!("{part:?} in {text:?} is a falling range"));
        }
        // All parts together, so no list of ranges allocates more either.
        if end - start >= MAX_IDS - ids.len() as u64 {
            return Err(format!(
                "{part:?} in {text:?} is too long a range (at most {MAX_IDS} Job_IDs in all)"
            ));
        }
        ids.extend(start..=end);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// `value` if it is not empty and every character is `allowed`; else `why`.
fn check(
    option: &'static str,
    value: &str,
    why: &'static str,
    allowed: impl Fn(char) -> bool,
) -> Result<String, SlurmError> {
    if value.is_empty() || !value.chars().all(allowed) {
        return Err(SlurmError::Option {
            option,
            value: value.to_string(),
            why,
        });
    }
    Ok(value.to_string())
}

/// Slurm's time forms: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`,
/// or `UNLIMITED`/`infinite` (any case) or `-1`.
fn check_time(value: &str) -> Result<String, SlurmError> {
    let numbers = |s: &str, most: usize| {
        let parts: Vec<&str> = s.split(':').collect();
        parts.len() <= most
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    let ok = ["unlimited", "infinite", "-1"]
        .iter()
        .any(|word| value.eq_ignore_ascii_case(word))
        || match value.split_once('-') {
            Some((days, rest)) => numbers(days, 1) && numbers(rest, 3),
            None => numbers(value, 3),
        };
    if !ok {
        return Err(SlurmError::Option {
            option: "time",
            value: value.to_string(),
            why: "is not a Slurm time (minutes, M:S, H:M:S, D-H, D-H:M, D-H:M:S or unlimited)",
        });
    }
    Ok(value.to_string())
}

/// A whole number with an optional unit K, M, G or T (any case, with or
/// without a B), as sbatch reads it.
fn check_memory(value: &str) -> Result<String, SlurmError> {
    let lower = value.to_ascii_lowercase();
    let digits = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let ok = digits > 0
        && matches!(
            &lower[digits..],
            "" | "k" | "m" | "g" | "t" | "kb" | "mb" | "gb" | "tb"
        );
    if !ok {
        return Err(SlurmError::Option {
            option: "mem-per-cpu",
            value: value.to_string(),
            why: "is not a Slurm memory size (a whole number with K, M, G or T, e.g. 4G or 4GB)",
        });
    }
    Ok(value.to_string())
}

/// One argument as an `#SBATCH` line holds it: as it is, or in double
/// quotes if it has a space (sbatch reads those back as one argument). What
/// no quoting keeps whole (a line break, a control character, a double
/// quote with a space) is refused.
fn sbatch_word(option: &'static str, value: &str) -> Result<String, SlurmError> {
    let fail = |why| SlurmError::Option {
        option,
        value: value.to_string(),
        why,
    };
    if value.is_empty() {
        return Err(fail("is empty"));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(fail(
            "holds a line break or control character, which would end its #SBATCH line",
        ));
    }
    if !value.contains(char::is_whitespace) {
        return Ok(value.to_string());
    }
    if value.contains('"') {
        return Err(fail(
            "holds both a space and a double quote, which an #SBATCH line cannot keep as one argument",
        ));
    }
    Ok(format!("\"{value}\""))
}

fn sanitize(stem: &str) -> String {
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn quote(path: &Path) -> Result<String, SlurmError> {
    let fail = |reason: String| SlurmError::Path {
        path: path.to_path_buf(),
        reason,
    };
    let text = path
        .to_str()
        .ok_or_else(|| fail("it is not UTF-8".to_string()))?;
    shlex::try_quote(text)
        .map(|q| q.into_owned())
        .map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SlurmScript<'static> {
        SlurmScript {
            program: "/opt/pp/procpool".into(),
            job_file: "/data/my jobs.txt".into(),
            ids: &[0, 1, 3],
            status: "/data/s.tsv".into(),
            logs: Some("/data/logs".into()),
            pass_on: vec!["--timeout".into(), "60".into()],
            options: SlurmOptions::default(),
            max_array_size: 1001,
            id_list: None,
        }
    }

    fn script(options: SlurmOptions) -> Result<String, SlurmError> {
        SlurmScript { options, ..base() }.render()
    }

    #[test]
    fn arrays_collapse_and_parse_back() {
        for ids in [vec![0], vec![0, 1, 2], vec![3, 5, 6, 7, 10], vec![]] {
            let text = format_array(&ids);
            if !ids.is_empty() {
                assert_eq!(parse_array(&text).unwrap(), ids, "{text}");
            }
        }
        assert_eq!(format_array(&[]), "");
        for bad in ["", "a", "1-", "-1", "5-2", "1,,2", "0-99999999999"] {
            assert!(parse_array(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_script_has_the_array_the_settings_and_one_quoted_command() {
        let text = script(SlurmOptions {
            partition: Some("day,week".into()),
            time: Some("1-02:00:00".into()),
            mem_per_cpu: Some("4G".into()),
            cpus_per_task: Some(2),
            max_running: Some(10),
            ..Default::default()
        })
        .unwrap();
        let expected_head = "#!/bin/bash\n\
            #SBATCH --array 0-1,3%10\n\
            #SBATCH --job-name procpool-my_jobs\n\
            #SBATCH --output procpool-my_jobs-%A_%a.out\n\
            #SBATCH --ntasks 1\n\
            #SBATCH --partition day,week\n\
            #SBATCH --time 1-02:00:00\n\
            #SBATCH --mem-per-cpu 4G\n\
            #SBATCH --cpus-per-task 2\n";
        assert!(text.starts_with(expected_head), "{text}");
        let last = text.lines().last().unwrap();
        assert_eq!(
            last,
            "exec /opt/pp/procpool -p 1 jobs '/data/my jobs.txt' --only \"$SLURM_ARRAY_TASK_ID\" --array-task \
             --status /data/s.tsv --logs /data/logs --timeout 60"
        );
    }

    #[test]
    fn ids_beyond_the_limit_or_too_many_to_list_run_from_an_id_list() {
        // 900 scattered failures of 100,000 jobs: a 5,000-character --array.
        let ids: Vec<u64> = (0..900).map(|i| i * 111 + 5).collect();
        assert!(format_array(&ids).len() > 4095);
        assert!(!SlurmScript::ids_fit(&ids, 1001));
        let script = |id_list: Option<PathBuf>| {
            SlurmScript {
                ids: &ids,
                id_list,
                ..base()
            }
            .render()
        };
        assert!(matches!(
            script(None),
            Err(SlurmError::NeedsIdList {
                max_array_size: 1001
            })
        ));
        let text = script(Some("/data/ids 1.txt".into())).unwrap();
        // One submission: 900 tasks, one Job_ID each.
        assert!(
            text.starts_with("#!/bin/bash\n#SBATCH --array 0-899\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "ids=$(sed -n \"$((SLURM_ARRAY_TASK_ID * 1 + 1)),$((SLURM_ARRAY_TASK_ID * 1 + 1))p\" '/data/ids 1.txt' | paste -sd, -)\n"
            ),
            "{text}"
        );
        assert!(text.contains("--only \"$ids\" --array-task"), "{text}");
        // 100,002 jobs: 1001 tasks at most, 100 Job_IDs each.
        let all: Vec<u64> = (0..100_002).collect();
        let text = SlurmScript {
            ids: &all,
            id_list: Some("/data/ids.txt".into()),
            ..base()
        }
        .render()
        .unwrap();
        assert!(text.contains("#SBATCH --array 0-1000\n"), "{text}");
        assert!(text.contains("* 100 + 1))"), "{text}");
    }

    #[test]
    fn without_logs_the_tasks_discard_output() {
        let text = SlurmScript {
            logs: None,
            pass_on: vec![],
            ..base()
        }
        .render()
        .unwrap();
        assert!(
            text.trim_end().ends_with("--status /data/s.tsv --no-logs"),
            "{text}"
        );
    }

    #[test]
    fn settings_that_would_break_the_script_are_refused() {
        let cases = [
            SlurmOptions {
                partition: Some("day\n#SBATCH --x".into()),
                ..Default::default()
            },
            SlurmOptions {
                time: Some("1 hour".into()),
                ..Default::default()
            },
            SlurmOptions {
                mem_per_cpu: Some("4 GB".into()),
                ..Default::default()
            },
            SlurmOptions {
                job_name: Some("a\nb".into()),
                ..Default::default()
            },
        ];
        for options in cases {
            let e = script(options.clone()).unwrap_err();
            assert!(e.to_string().starts_with("--"), "{options:?}: {e}");
        }
        for t in [
            "30",
            "10:00",
            "1:00:00",
            "2-0",
            "2-12:30",
            "UNLIMITED",
            "unlimited",
            "-1",
        ] {
            assert!(check_time(t).is_ok(), "{t}");
        }
        for m in ["4G", "4GB", "4g", "500m", "1024"] {
            assert!(check_memory(m).is_ok(), "{m}");
        }
        for m in ["4 GB", "G", "4GBB", "4B", "-4G"] {
            assert!(check_memory(m).is_err(), "{m}");
        }
    }

    #[test]
    fn a_name_with_a_space_and_more_sbatch_arguments_are_quoted_on_their_lines() {
        let text = script(SlurmOptions {
            job_name: Some("my run".into()),
            extra: vec![
                "--account=lab".into(),
                "--comment".into(),
                "two words".into(),
            ],
            ..Default::default()
        })
        .unwrap();
        assert!(text.contains("#SBATCH --job-name \"my run\"\n"), "{text}");
        assert!(
            text.contains("#SBATCH --output \"my run-%A_%a.out\"\n"),
            "{text}"
        );
        assert!(
            text.contains("#SBATCH --account=lab --comment \"two words\"\n"),
            "{text}"
        );
        let bad = script(SlurmOptions {
            extra: vec!["say \"hi there\"".into()],
            ..Default::default()
        });
        assert!(bad.unwrap_err().to_string().starts_with("--sbatch"));
    }
}
