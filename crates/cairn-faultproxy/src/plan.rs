//! Which fault a request gets: a pure function of the seed and the request's sequence number,
//! so a run with the same seed and the same request order injects the same faults.

use http::Method;
use rand::{Rng, SeedableRng};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One kind of fault the proxy injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// The connection is reset (RST) before any response byte.
    Reset,
    /// 500 InternalError.
    InternalError,
    /// 503 SlowDown: S3's "reduce your request rate".
    SlowDown,
    /// 503 ServiceUnavailable (no SlowDown): the server cannot serve now.
    Unavailable,
    /// 429 TooManyRequests.
    TooManyRequests,
    /// No answer for [`Plan::stall`], then a reset: a client with a shorter timeout gives up.
    Stall,
    /// An object GET whose body ends after half its promised Content-Length.
    Truncate,
    /// An object GET whose body has one bit flipped.
    Flip,
}

impl Fault {
    /// Every fault, in a fixed order.
    pub const ALL: [Fault; 8] = [
        Fault::Reset,
        Fault::InternalError,
        Fault::SlowDown,
        Fault::Unavailable,
        Fault::TooManyRequests,
        Fault::Stall,
        Fault::Truncate,
        Fault::Flip,
    ];

    /// The name used on the command line and in counts.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Reset => "reset",
            Fault::InternalError => "500",
            Fault::SlowDown => "slowdown",
            Fault::Unavailable => "unavailable",
            Fault::TooManyRequests => "429",
            Fault::Stall => "stall",
            Fault::Truncate => "truncate",
            Fault::Flip => "flip",
        }
    }

    pub(crate) fn index(self) -> usize {
        Fault::ALL.iter().position(|f| *f == self).expect("listed")
    }

    /// Whether this fault can hit a request. Truncation and flips change object bytes, so they
    /// hit object GETs only (no query but `versionId`): a flipped listing would rename a key,
    /// which no checksum of an object's bytes could catch.
    pub fn applies(self, method: &Method, query: Option<&str>) -> bool {
        match self {
            Fault::Truncate | Fault::Flip => method == Method::GET && object_read(query),
            _ => true,
        }
    }
}

fn object_read(query: Option<&str>) -> bool {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .all(|p| p.starts_with("versionId="))
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Fault::ALL.iter().map(|f| f.name()).collect();
                format!("unknown fault {s:?}: expected one of {}", names.join(", "))
            })
    }
}

/// A fault with its probability per request, for some methods (none listed: every method).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The fault.
    pub fault: Fault,
    /// Probability per eligible request, 0..=1.
    pub rate: f64,
    /// The methods it hits; empty means all.
    pub methods: Vec<Method>,
}

impl FromStr for Rule {
    type Err = String;
    /// `FAULT=RATE` or `FAULT=RATE@GET,PUT`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (fault, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected FAULT=RATE or FAULT=RATE@METHOD,..."))?;
        let (rate, methods) = rest.split_once('@').unwrap_or((rest, ""));
        let rate: f64 = rate
            .parse()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| format!("{s:?}: the rate must be a number from 0 to 1"))?;
        let methods = methods
            .split(',')
            .filter(|m| !m.is_empty())
            .map(|m| {
                Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("{s:?}: {m:?} is not an HTTP method"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Rule {
            fault: fault.parse()?,
            rate,
            methods,
        })
    }
}

/// What the proxy does to the requests it forwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Seeds every choice.
    pub seed: u64,
    /// Faults and their rates; their rates add up per request (at most 1 in all).
    pub rules: Vec<Rule>,
    /// How long a [`Fault::Stall`] holds a request before resetting it.
    pub stall: Duration,
    /// Answer 503 SlowDown to any request that would make more than this many in flight.
    pub slowdown_above: Option<usize>,
    /// Held this long before it is answered, counted in flight meanwhile: a slow server, so
    /// that how many requests are in flight does not depend on how fast the client runs.
    pub latency: Duration,
    /// Every request gets the rules' total rate, shared among the faults that can hit it (a
    /// PUT cannot get a flipped body, so its share goes to the others). Off, each rule keeps
    /// its own rate and requests a rule cannot hit get less in all.
    pub per_request: bool,
}

impl Plan {
    /// Forwards everything unchanged.
    pub fn clean() -> Plan {
        Plan {
            seed: 0,
            rules: Vec::new(),
            stall: Duration::from_secs(5),
            slowdown_above: None,
            latency: Duration::ZERO,
            per_request: false,
        }
    }

    /// `rate` per request, shared equally between those of `faults` that can hit it.
    pub fn uniform(seed: u64, rate: f64, faults: &[Fault]) -> Plan {
        let each = rate / faults.len().max(1) as f64;
        Plan {
            seed,
            rules: faults
                .iter()
                .map(|&fault| Rule {
                    fault,
                    rate: each,
                    methods: Vec::new(),
                })
                .collect(),
            per_request: true,
            ..Plan::clean()
        }
    }

    /// The fault for request number `n`, if any, and a random word for where it lands (the
    /// flipped bit). Only the rules that apply to this method and query take part.
    pub fn choose(&self, n: u64, method: &Method, query: Option<&str>) -> Option<(Fault, u64)> {
        let mut rng =
            rand::rngs::StdRng::seed_from_u64(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let u: f64 = rng.random();
        let word: u64 = rng.random();
        let hits = |r: &&Rule| {
            (r.methods.is_empty() || r.methods.contains(method)) && r.fault.applies(method, query)
        };
        let scale = if self.per_request {
            let all: f64 = self.rules.iter().map(|r| r.rate).sum();
            let here: f64 = self.rules.iter().filter(hits).map(|r| r.rate).sum();
            if here > 0.0 {
                all / here
            } else {
                0.0
            }
        } else {
            1.0
        };
        let mut acc = 0.0;
        for r in self.rules.iter().filter(hits) {
            acc += r.rate * scale;
            if u < acc {
                return Some((r.fault, word));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_repeat_with_the_seed_and_match_the_rates() {
        let plan = Plan::uniform(7, 0.1, &Fault::ALL);
        let pick = |p: &Plan| -> Vec<_> {
            (0..20_000)
                .map(|n| p.choose(n, &Method::GET, None).map(|f| f.0))
                .collect()
        };
        let a = pick(&plan);
        assert_eq!(a, pick(&plan), "same seed, same faults");
        let other = Plan {
            seed: 8,
            ..plan.clone()
        };
        assert_ne!(a, pick(&other), "another seed, other faults");
        let hits = a.iter().filter(|f| f.is_some()).count();
        assert!((1800..2200).contains(&hits), "10% of 20,000: {hits}");
        // A PUT cannot get a body fault: the six others share its 10%.
        let puts = (0..20_000)
            .filter_map(|n| plan.choose(n, &Method::PUT, None))
            .count();
        assert!((1800..2200).contains(&puts), "10% of 20,000 PUTs: {puts}");
        for f in Fault::ALL {
            let n = a.iter().filter(|x| **x == Some(f)).count();
            assert!((150..350).contains(&n), "{f}: {n} of ~250");
        }
    }

    #[test]
    fn body_faults_hit_object_gets_only() {
        let plan = Plan::uniform(1, 1.0, &[Fault::Flip, Fault::Truncate]);
        assert!(plan.choose(0, &Method::GET, None).is_some());
        assert!(plan.choose(0, &Method::GET, Some("versionId=3")).is_some());
        for n in 0..100 {
            assert_eq!(plan.choose(n, &Method::PUT, None), None);
            assert_eq!(plan.choose(n, &Method::GET, Some("list-type=2")), None);
        }
    }

    #[test]
    fn rules_parse_and_filter_methods() {
        let r: Rule = "slowdown=0.5@put,GET".parse().unwrap();
        assert_eq!(r.fault, Fault::SlowDown);
        assert_eq!(r.methods, vec![Method::PUT, Method::GET]);
        let plan = Plan {
            rules: vec!["500=1@PUT".parse().unwrap()],
            ..Plan::clean()
        };
        assert_eq!(plan.choose(3, &Method::GET, None), None);
        assert_eq!(
            plan.choose(3, &Method::PUT, None).map(|f| f.0),
            Some(Fault::InternalError)
        );
        assert!("flip=2"
            .parse::<Rule>()
            .unwrap_err()
            .contains("from 0 to 1"));
        assert!("boom=0.1"
            .parse::<Rule>()
            .unwrap_err()
            .contains("expected one of reset, 500"));
    }
}
