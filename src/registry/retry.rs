//! The one retry policy for registry requests: when a failed request is tried again, and
//! after how long.
//!
//! Every request the [`client`](super::client) sends (manifests, blobs, tokens) runs in one
//! loop ([`Retrier`]) that asks [`Policy::decide`] after each failure. The decision is a
//! pure function of the method, the failure (by type: a status code or an I/O error
//! kind, never the text of a message), the attempts made, the time spent and a jitter
//! value, so it is unit-tested without a network or a clock.
//!
//! Rules:
//! - only idempotent requests (GET, HEAD) are retried: a repeated POST or PUT could do its
//!   work twice. A push's writes are retried as whole operations instead
//!   ([`Retrier::restartable`]): a blob upload starts again from its POST (a new upload
//!   session; the blob is content-addressed, so a second upload of the same bytes changes
//!   nothing), never by re-sending a PATCH or PUT of a session that broke, and a manifest
//!   put sends the same bytes under the same name again;
//! - retryable statuses are 408, 429, 500, 502, 503 and 504 (the server or something in
//!   front of it failing for now); every other status is the answer;
//! - retryable I/O errors are those of a connection that broke or stalled (reset, aborted,
//!   broken pipe, a body that ends early, a timeout), and a refused connection only once
//!   the registry has answered before (it is restarting; before that, nothing is there,
//!   and waiting would only delay the error). DNS, TLS and protocol errors are final;
//! - the wait is the server's `Retry-After` (delta-seconds or an HTTP-date), capped at
//!   [`Policy::max_retry_after`]; without one, exponential backoff from
//!   [`Policy::base_backoff`], doubling, capped at [`Policy::max_backoff`], with "equal
//!   jitter" (half fixed, half random) so parallel downloads that failed together do not
//!   come back in lockstep;
//! - bounds: at most [`Policy::max_attempts`] attempts in all, and no retry whose wait
//!   would end later than [`Policy::max_total`] after the clock started. A download that
//!   made progress restarts the clock (not the attempt count), so a long healthy transfer
//!   does not use up the time a later hiccup may need.
//!
//! Invariant: the number of attempts and the time spent waiting are bounded whatever the
//! server answers (a `Retry-After: 86400` waits [`Policy::max_retry_after`] at most).

use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ureq::http::Method;

/// How a request failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The server answered with this status (after authentication was dealt with);
    /// `retry_after` is its parsed `Retry-After` header, if any.
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    /// An I/O error of this kind while connecting, sending or reading the answer.
    /// `reached`: whether the registry had answered any earlier request.
    Io { kind: io::ErrorKind, reached: bool },
    /// No answer in time (connecting, waiting for the response, or between reads).
    Timeout,
    /// Anything else (DNS, TLS, a malformed answer, a verification or auth failure):
    /// trying again would give the same result.
    Final,
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then try again.
    Retry(Duration),
    /// Give up and report this failure.
    Stop,
}

/// The knobs of the policy; [`Policy::REGISTRY`] is what box uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// No retry starts later than this after the clock started.
    pub max_total: Duration,
    /// The first backoff (before jitter); each further one doubles.
    pub base_backoff: Duration,
    /// The longest backoff (before jitter).
    pub max_backoff: Duration,
    /// The longest a `Retry-After` makes box wait.
    pub max_retry_after: Duration,
}

impl Policy {
    /// Five attempts within a minute: waits of about 0.25, 0.5, 1 and 2 s, or what the
    /// registry asks for up to 10 s each.
    pub const REGISTRY: Policy = Policy {
        max_attempts: 5,
        max_total: Duration::from_secs(60),
        base_backoff: Duration::from_millis(250),
        max_backoff: Duration::from_secs(4),
        max_retry_after: Duration::from_secs(10),
    };

    /// For a mirror (registries.conf): two attempts within 10 s. A mirror is a shortcut,
    /// and the registry behind it is the fallback, so a failing mirror is left quickly.
    pub const MIRROR: Policy = Policy {
        max_attempts: 2,
        max_total: Duration::from_secs(10),
        base_backoff: Duration::from_millis(250),
        max_backoff: Duration::from_secs(1),
        max_retry_after: Duration::from_secs(2),
    };

    /// Whether to try again after `failure`, the `attempts`-th attempt (1 for the first),
    /// `elapsed` after the clock started. `jitter` is a random value in `[0, 1)`.
    pub fn decide(
        &self,
        method: &Method,
        failure: &Failure,
        attempts: u32,
        elapsed: Duration,
        jitter: f64,
    ) -> Decision {
        if !is_idempotent(method) {
            return Decision::Stop;
        }
        self.decide_restart(failure, attempts, elapsed, jitter)
    }

    /// [`Policy::decide`] for an operation that is safe to start over as a whole (see
    /// [`Retrier::restartable`]): the same rules, whatever the methods of its requests.
    pub fn decide_restart(
        &self,
        failure: &Failure,
        attempts: u32,
        elapsed: Duration,
        jitter: f64,
    ) -> Decision {
        if !is_retryable(failure) || attempts >= self.max_attempts {
            return Decision::Stop;
        }
        let wait = match failure {
            Failure::Status {
                retry_after: Some(asked),
                ..
            } => (*asked).min(self.max_retry_after),
            _ => self.backoff(attempts, jitter),
        };
        if elapsed.saturating_add(wait) > self.max_total {
            return Decision::Stop;
        }
        Decision::Retry(wait)
    }

    /// The wait after the `attempts`-th failed attempt without `Retry-After`: the
    /// exponential delay capped at `max_backoff`, half of it fixed and half scaled by
    /// `jitter` (clamped into `[0, 1]`; NaN counts as 0).
    pub fn backoff(&self, attempts: u32, jitter: f64) -> Duration {
        let doublings = attempts.saturating_sub(1).min(20);
        let full = self
            .base_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff);
        let half = full / 2;
        // `mul_f64` panics on NaN: treat a nonsense jitter as none.
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        half + half.mul_f64(jitter)
    }
}

/// GET and HEAD: the requests box may send twice without changing anything.
pub fn is_idempotent(method: &Method) -> bool {
    *method == Method::GET || *method == Method::HEAD
}

/// Statuses that say "not now" rather than "no".
pub fn is_retryable_status(code: u16) -> bool {
    matches!(code, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Whether a failure is worth another attempt (before the bounds are considered).
pub fn is_retryable(failure: &Failure) -> bool {
    match *failure {
        Failure::Status { code, .. } => is_retryable_status(code),
        Failure::Io { kind, reached } => match kind {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::TimedOut
            | io::ErrorKind::Interrupted => true,
            // Refused after the registry answered: it is restarting, not absent.
            io::ErrorKind::ConnectionRefused => reached,
            _ => false,
        },
        Failure::Timeout => true,
        Failure::Final => false,
    }
}

/// Parse a `Retry-After` value: delta-seconds (`120`) or an HTTP-date (RFC 9110 §10.2.3,
/// in any of the three date forms of §5.6.7), relative to `now`. A date in the past
/// means "now" (zero). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long numbers are still "a long time", not an error.
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An HTTP-date: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), or the obsolete RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`) forms,
/// which recipients must still accept.
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (day, month, year, time) = match words.as_slice() {
        // IMF-fixdate: day-name "," day month year time "GMT"
        [_, day, month, year, time, "GMT"] => (
            day.parse::<u32>().ok()?,
            *month,
            year.parse::<i64>().ok()?,
            *time,
        ),
        // RFC 850: day-name "," day "-" month "-" 2-digit-year time "GMT"
        [_, date, time, "GMT"] => {
            let mut parts = date.split('-');
            let day = parts.next()?.parse::<u32>().ok()?;
            let month = parts.next()?;
            let short_year = parts.next()?.parse::<i64>().ok()?;
            // RFC 9110: a two-digit year more than 50 years in the future is in the past
            // century; in practice this means 70..99 are 19xx.
            let year = if short_year < 70 {
                2000 + short_year
            } else {
                1900 + short_year
            };
            (day, month, year, *time)
        }
        // asctime: day-name month day time year
        [_, month, day, time, year] => (
            day.parse::<u32>().ok()?,
            *month,
            year.parse::<i64>().ok()?,
            *time,
        ),
        _ => return None,
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let mut clock = time.split(':').map(|p| p.parse::<u32>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if clock.next().is_some() || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let seconds = u64::try_from(seconds).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the well-known era-based
/// conversion: years counted from March so that the leap day is the last of the year).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A random value in `[0, 1)` for jitter, from the kernel's generator. Jitter needs no
/// secrecy; if `getrandom` fails (it does not on supported kernels) the time's
/// nanoseconds stand in.
pub fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    let value = match rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty()) {
        Ok(4) => u32::from_ne_bytes(bytes),
        _ => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()),
    };
    f64::from(value) / (f64::from(u32::MAX) + 1.0)
}

/// The state of one retried operation: the attempts made and the clock.
pub struct Retrier {
    policy: Policy,
    /// The method of the one request retried; `None` for an operation retried whole.
    method: Option<Method>,
    attempts: u32,
    clock: Instant,
}

impl Retrier {
    /// One request, retried only when its method is idempotent.
    pub fn new(policy: Policy, method: Method) -> Retrier {
        Retrier {
            policy,
            method: Some(method),
            attempts: 0,
            clock: Instant::now(),
        }
    }

    /// An operation whose every attempt starts over from its first request, and whose
    /// effect is the same however often it completes: a blob upload from its POST (a
    /// fresh session), a manifest put. Its failures are retried by the same rules as an
    /// idempotent request's.
    pub fn restartable(policy: Policy) -> Retrier {
        Retrier {
            policy,
            method: None,
            attempts: 0,
            clock: Instant::now(),
        }
    }

    /// How many attempts have started.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Count the start of an attempt.
    pub fn attempt(&mut self) {
        self.attempts += 1;
    }

    /// The attempt moved the operation forward (a download received bytes): restart
    /// the time budget, not the attempt count.
    pub fn progressed(&mut self) {
        self.clock = Instant::now();
    }

    /// After a failed attempt: sleep and return `true` to try again, or `false` to stop.
    pub fn wait_after(&mut self, failure: &Failure) -> bool {
        let (elapsed, jitter) = (self.clock.elapsed(), jitter());
        let decision = match &self.method {
            Some(method) => self
                .policy
                .decide(method, failure, self.attempts, elapsed, jitter),
            None => self
                .policy
                .decide_restart(failure, self.attempts, elapsed, jitter),
        };
        match decision {
            Decision::Retry(wait) => {
                std::thread::sleep(wait);
                true
            }
            Decision::Stop => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy::REGISTRY;

    fn status(code: u16) -> Failure {
        Failure::Status {
            code,
            retry_after: None,
        }
    }

    fn io(kind: io::ErrorKind) -> Failure {
        Failure::Io {
            kind,
            reached: true,
        }
    }

    fn retried(failure: Failure) -> bool {
        matches!(
            P.decide(&Method::GET, &failure, 1, Duration::ZERO, 0.5),
            Decision::Retry(_)
        )
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(retried(status(code)), "{code}");
        }
        for code in [
            200, 206, 301, 400, 401, 403, 404, 405, 409, 416, 501, 505, 511,
        ] {
            assert!(!retried(status(code)), "{code}");
        }
    }

    #[test]
    fn only_transient_io_errors_are_retried() {
        use io::ErrorKind::*;
        for kind in [
            ConnectionReset,
            ConnectionAborted,
            BrokenPipe,
            UnexpectedEof,
            TimedOut,
        ] {
            assert!(retried(io(kind)), "{kind:?}");
        }
        for kind in [
            NotFound,
            PermissionDenied,
            InvalidData,
            InvalidInput,
            AddrNotAvailable,
            Other,
        ] {
            assert!(!retried(io(kind)), "{kind:?}");
        }
        assert!(retried(Failure::Timeout));
        assert!(!retried(Failure::Final));
        // Refused: a restart once the registry has answered, else nothing is there.
        assert!(retried(io(ConnectionRefused)));
        assert!(!retried(Failure::Io {
            kind: ConnectionRefused,
            reached: false
        }));
    }

    #[test]
    fn non_idempotent_requests_are_never_retried() {
        for method in [
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ] {
            for failure in [status(503), io(io::ErrorKind::ConnectionReset)] {
                assert_eq!(
                    P.decide(&method, &failure, 1, Duration::ZERO, 0.0),
                    Decision::Stop,
                    "{method}"
                );
            }
        }
        assert!(matches!(
            P.decide(&Method::HEAD, &status(503), 1, Duration::ZERO, 0.0),
            Decision::Retry(_)
        ));
    }

    #[test]
    fn a_restartable_operation_follows_the_same_rules_whatever_its_methods() {
        // A blob upload (POST, PATCH, PUT) restarted whole: transient failures again, the
        // answers not, within the same bounds.
        let restart = |failure: Failure, attempts| {
            matches!(
                P.decide_restart(&failure, attempts, Duration::ZERO, 0.5),
                Decision::Retry(_)
            )
        };
        assert!(restart(status(503), 1));
        assert!(restart(io(io::ErrorKind::ConnectionReset), 1));
        assert!(restart(Failure::Timeout, 1));
        for code in [400, 401, 403, 404, 413] {
            assert!(!restart(status(code), 1), "{code}");
        }
        assert!(!restart(Failure::Final, 1));
        assert!(!restart(status(503), P.max_attempts));
        let mut retrier = Retrier::restartable(Policy {
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            ..P
        });
        retrier.attempt();
        assert!(retrier.wait_after(&status(502)));
        assert_eq!(retrier.attempts(), 1);
        retrier.attempt();
        assert!(!retrier.wait_after(&status(413)));
    }

    #[test]
    fn attempts_are_bounded() {
        let failure = status(503);
        for attempts in 1..P.max_attempts {
            assert!(matches!(
                P.decide(&Method::GET, &failure, attempts, Duration::ZERO, 0.9),
                Decision::Retry(_)
            ));
        }
        for attempts in P.max_attempts..P.max_attempts + 3 {
            assert_eq!(
                P.decide(&Method::GET, &failure, attempts, Duration::ZERO, 0.9),
                Decision::Stop
            );
        }
    }

    #[test]
    fn total_time_is_bounded() {
        let failure = Failure::Status {
            code: 503,
            retry_after: Some(Duration::from_secs(5)),
        };
        let decide = |elapsed| P.decide(&Method::GET, &failure, 1, elapsed, 0.0);
        assert_eq!(
            decide(Duration::from_secs(50)),
            Decision::Retry(Duration::from_secs(5))
        );
        assert_eq!(
            decide(Duration::from_secs(55)),
            Decision::Retry(Duration::from_secs(5))
        );
        // The wait would end past the budget: stop now rather than sleep in vain.
        assert_eq!(decide(Duration::from_secs(56)), Decision::Stop);
        assert_eq!(decide(Duration::from_secs(3600)), Decision::Stop);
        // Summed over a whole run, the waits never exceed the budget.
        let mut elapsed = Duration::ZERO;
        let mut attempts = 1;
        while let Decision::Retry(wait) = P.decide(&Method::GET, &failure, attempts, elapsed, 1.0) {
            elapsed += wait;
            attempts += 1;
        }
        assert!(elapsed <= P.max_total && attempts <= P.max_attempts);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let no_jitter: Vec<Duration> = (1..=8).map(|a| P.backoff(a, 1.0)).collect();
        assert_eq!(no_jitter[0], P.base_backoff);
        assert_eq!(no_jitter[1], P.base_backoff * 2);
        assert_eq!(no_jitter[2], P.base_backoff * 4);
        assert!(no_jitter.windows(2).all(|w| w[0] <= w[1]));
        assert!(no_jitter.iter().all(|d| *d <= P.max_backoff));
        assert_eq!(*no_jitter.last().unwrap(), P.max_backoff);
        // Jitter keeps at least half of the delay and never adds to it.
        for attempts in 1..=10 {
            let full = P.backoff(attempts, 1.0);
            for j in [0.0, 0.3, 0.999, -1.0, 7.0, f64::NAN, f64::INFINITY] {
                let d = P.backoff(attempts, j);
                assert!(d >= full / 2 && d <= full, "{attempts} {j}: {d:?}");
            }
        }
        assert_eq!(P.backoff(u32::MAX, 0.5), P.backoff(30, 0.5));
        let j = jitter();
        assert!((0.0..1.0).contains(&j));
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let failure = |s| Failure::Status {
            code: 429,
            retry_after: Some(Duration::from_secs(s)),
        };
        let wait = |f| P.decide(&Method::GET, &f, 1, Duration::ZERO, 0.0);
        assert_eq!(wait(failure(3)), Decision::Retry(Duration::from_secs(3)));
        assert_eq!(wait(failure(0)), Decision::Retry(Duration::ZERO));
        assert_eq!(wait(failure(86_400)), Decision::Retry(P.max_retry_after));
        // Retry-After on a status that is not retryable changes nothing.
        let not_found = Failure::Status {
            code: 404,
            retry_after: Some(Duration::from_secs(1)),
        };
        assert_eq!(wait(not_found), Decision::Stop);
    }

    #[test]
    fn retry_after_in_both_forms() {
        // 1994-11-06T08:49:37Z, the RFC's example.
        let example = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let now = example - Duration::from_secs(90);
        let secs = |v: &str| parse_retry_after(v, now).map(|d| d.as_secs());
        assert_eq!(secs("120"), Some(120));
        assert_eq!(secs(" 0 "), Some(0));
        assert_eq!(secs("99999999999999999999999"), Some(u64::MAX));
        assert_eq!(secs("Sun, 06 Nov 1994 08:49:37 GMT"), Some(90));
        assert_eq!(secs("Sunday, 06-Nov-94 08:49:37 GMT"), Some(90));
        assert_eq!(secs("Sun Nov  6 08:49:37 1994"), Some(90));
        // A date already past means now.
        assert_eq!(
            parse_retry_after(
                "Sun, 06 Nov 1994 08:49:37 GMT",
                example + Duration::from_secs(5)
            ),
            Some(Duration::ZERO)
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
        // Leap years and the turn of the century.
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(951_782_400))
        );
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(UNIX_EPOCH)
        );
        assert_eq!(
            parse_http_date("Sun, 06 Dec 2026 11:32:19 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(1_796_556_739))
        );
    }
}
