//! Build progress on stderr: one line per step with its timing. On a TTY the running step is
//! shown and then completed in place; otherwise plain numbered lines, as `--progress=plain`.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use builder::exec::Progress;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    Auto,
    Plain,
    Tty,
}

impl ProgressMode {
    /// `auto` is `tty` on a terminal, `plain` otherwise.
    pub fn resolve(self, is_tty: bool) -> ProgressMode {
        match self {
            ProgressMode::Auto if is_tty => ProgressMode::Tty,
            ProgressMode::Auto => ProgressMode::Plain,
            m => m,
        }
    }
}

pub struct PlainProgress {
    mode: ProgressMode,
    state: Mutex<(usize, String)>,
}

impl PlainProgress {
    pub fn new(mode: ProgressMode) -> Self {
        PlainProgress {
            mode,
            state: Mutex::new((0, String::new())),
        }
    }
}

impl Progress for PlainProgress {
    fn step(&self, stage: &str, index: usize, total: usize, text: &str) {
        let mut st = self.state.lock().unwrap();
        st.0 += 1;
        let text = text.lines().next().unwrap_or("");
        st.1 = format!("[{stage} {index}/{total}] {text}");
        let mut err = std::io::stderr().lock();
        match self.mode {
            ProgressMode::Tty => {
                let _ = write!(err, "\r\x1b[2K => {}", st.1);
            }
            _ => {
                let _ = writeln!(err, "#{} {}", st.0, st.1);
            }
        }
        let _ = err.flush();
    }

    fn step_done(&self, cached: bool, elapsed: Duration) {
        let st = self.state.lock().unwrap();
        let what = if cached { "CACHED" } else { "DONE" };
        let mut err = std::io::stderr().lock();
        match self.mode {
            ProgressMode::Tty => {
                let _ = writeln!(
                    err,
                    "\r\x1b[2K => {} {}{:.1}s",
                    st.1,
                    if cached { "CACHED " } else { "" },
                    elapsed.as_secs_f64()
                );
            }
            _ => {
                let _ = writeln!(err, "#{} {} {:.1}s", st.0, what, elapsed.as_secs_f64());
            }
        }
    }

    fn note(&self, message: &str) {
        eprintln!("{message}");
    }
}
