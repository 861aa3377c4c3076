//! Progress of a long command (`replay`, `backfill`) on stderr: an `indicatif` bar with rate
//! and ETA on a terminal; plain lines, at most one every [`PLAIN_EVERY`], otherwise (a CI log
//! or a file must not fill with redraws).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is written when stderr is not a terminal.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    /// On a terminal: the bar. Otherwise plain lines.
    bar: Option<ProgressBar>,
    what: &'static str,
    len: u64,
    pos: u64,
    started: Instant,
    last_line: Option<Instant>,
    hidden: bool,
}

impl Progress {
    /// A progress of `len` units (`what` names the command); a bar when stderr is a terminal.
    pub fn new(what: &'static str, len: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {percent:>3}% {msg} · {elapsed_precise} elapsed, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(what);
            bar
        });
        Progress {
            bar,
            what,
            len,
            pos: 0,
            started: Instant::now(),
            last_line: None,
            hidden: false,
        }
    }

    /// Shows nothing at all (Lambda mode, whose log takes JSON lines).
    pub fn hidden() -> Progress {
        Progress {
            bar: None,
            what: "",
            len: 0,
            pos: 0,
            started: Instant::now(),
            last_line: None,
            hidden: true,
        }
    }

    pub fn set_len(&mut self, len: u64) {
        self.len = len;
        if let Some(bar) = &self.bar {
            bar.set_length(len);
        }
    }

    /// Moves to `pos` (of `len`), saying `message` (counts and rate).
    pub fn update(&mut self, pos: u64, message: &str) {
        self.pos = pos.min(self.len);
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.pos);
                bar.set_message(message.to_owned());
            }
            None if self.hidden => {}
            None => {
                if self.last_line.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
                    self.last_line = Some(Instant::now());
                    eprintln!("{}: {}% {message}", self.what, self.percent());
                }
            }
        }
    }

    /// A line above the bar (or on its own without one).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None if self.hidden => {}
            None => eprintln!("{line}"),
        }
    }

    /// Removes the bar; without one, a last plain line.
    pub fn finish(&mut self, message: &str) {
        match self.bar.take() {
            Some(bar) => bar.finish_and_clear(),
            None if self.hidden => {}
            None => eprintln!(
                "{}: {}% {message} in {:.1} s",
                self.what,
                self.percent(),
                self.started.elapsed().as_secs_f64()
            ),
        }
    }

    fn percent(&self) -> u64 {
        self.pos
            .saturating_mul(100)
            .checked_div(self.len)
            .unwrap_or(100)
    }
}

/// Units per second since `since`, for progress messages.
pub fn rate(count: u64, since: Instant) -> u64 {
    let secs = since.elapsed().as_secs_f64();
    if secs < 0.001 {
        0
    } else {
        (count as f64 / secs) as u64
    }
}
