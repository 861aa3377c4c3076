//! Progress of a long command (`replay`, `backfill`) on stderr: an `indicatif` bar with rate
//! and ETA on a terminal; plain lines, at most one every [`PLAIN_EVERY`], otherwise (a CI log
//! or a file must not fill with redraws).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is written when stderr is not a terminal.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    shown: Shown,
    what: &'static str,
    len: u64,
    pos: u64,
    started: Instant,
}

/// Where progress shows.
enum Shown {
    /// On a terminal: the bar.
    Bar(ProgressBar),
    /// Otherwise: plain lines, the last one written then.
    Lines(Option<Instant>),
    /// Nowhere (Lambda mode, whose log takes JSON lines).
    Hidden,
}

impl Progress {
    /// A progress of `len` units (`what` names the command); a bar when stderr is a terminal.
    pub fn new(what: &'static str, len: u64) -> Progress {
        let shown = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {percent:>3}% {msg} · {elapsed_precise} elapsed, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(what);
            Shown::Bar(bar)
        } else {
            Shown::Lines(None)
        };
        Progress {
            shown,
            what,
            len,
            pos: 0,
            started: Instant::now(),
        }
    }

    /// Shows nothing at all (Lambda mode, whose log takes JSON lines).
    pub fn hidden() -> Progress {
        Progress {
            shown: Shown::Hidden,
            what: "",
            len: 0,
            pos: 0,
            started: Instant::now(),
        }
    }

    pub fn set_len(&mut self, len: u64) {
        self.len = len;
        if let Shown::Bar(bar) = &self.shown {
            bar.set_length(len);
        }
    }

    /// Moves to `pos` (of `len`), saying `message` (counts and rate).
    pub fn update(&mut self, pos: u64, message: &str) {
        self.pos = pos.min(self.len);
        let percent = self.percent();
        match &mut self.shown {
            Shown::Bar(bar) => {
                bar.set_position(self.pos);
                bar.set_message(message.to_owned());
            }
            Shown::Lines(last) => {
                if last.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
                    *last = Some(Instant::now());
                    eprintln!("{}: {percent}% {message}", self.what);
                }
            }
            Shown::Hidden => {}
        }
    }

    /// A line above the bar (or on its own without one).
    pub fn println(&self, line: &str) {
        match &self.shown {
            Shown::Bar(bar) => bar.println(line),
            Shown::Lines(_) => eprintln!("{line}"),
            Shown::Hidden => {}
        }
    }

    /// Removes the bar; without one, a last plain line.
    pub fn finish(&mut self, message: &str) {
        match std::mem::replace(&mut self.shown, Shown::Hidden) {
            Shown::Bar(bar) => bar.finish_and_clear(),
            Shown::Lines(_) => eprintln!(
                "{}: {}% {message} in {:.1} s",
                self.what,
                self.percent(),
                self.started.elapsed().as_secs_f64()
            ),
            Shown::Hidden => {}
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
