//! Memory lent for a job goes back when the job has ended: engines put to sleep to make room
//! (vLLM, SGLang) are woken once the app that asked says its job is over (its agent's
//! `room_job` is gone or names another need) or the app has gone. Engines that reload on
//! demand (Ollama, a llama.cpp router, LM Studio, the WebUIs) are left to reload by themselves.

use super::arbiter::RoomMade;
use super::discovery::LiveAgent;
use super::engines::EngineHandle;

/// Most loans remembered at once (one per job that got room; a job asks once).
const MAX_LOANS: usize = 64;

/// Engines asleep for one job.
#[derive(Clone, Debug, PartialEq)]
pub struct Loan {
    /// The asking process.
    pub pid: u32,
    /// Its need.
    pub need: u64,
    /// Who asked, in words.
    pub who: String,
    /// The engines put to sleep for it.
    pub engines: Vec<EngineHandle>,
}

/// What handing back did.
#[derive(Clone, Debug, PartialEq)]
pub struct HandedBack {
    /// Who had the room.
    pub who: String,
    /// Each engine and the outcome of waking it (an error in words).
    pub woke: Vec<(String, Result<(), String>)>,
}

impl HandedBack {
    /// One sentence per engine.
    pub fn summary(&self) -> String {
        self.woke
            .iter()
            .map(|(app, outcome)| match outcome {
                Ok(()) => crate::t!("engine-woke", app = app.clone()),
                Err(e) => crate::t!("engine-wake-failed", app = app.clone(), error = e.clone()),
            })
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// The loans outstanding.
#[derive(Debug, Default)]
pub struct Loans {
    loans: Vec<Loan>,
}

impl Loans {
    /// Remembers the engines put to sleep for `made` (nothing when none slept).
    pub fn lend(&mut self, made: &RoomMade) {
        let engines: Vec<EngineHandle> = made
            .reports
            .iter()
            .flat_map(|r| r.slept.iter().cloned())
            .collect();
        if engines.is_empty() {
            return;
        }
        if self.loans.len() >= MAX_LOANS {
            self.loans.remove(0);
        }
        self.loans.push(Loan {
            pid: made.pid,
            need: made.need.id,
            who: made
                .need
                .what
                .clone()
                .unwrap_or_else(|| format!("pid {}", made.pid)),
            engines,
        });
    }

    /// The loans whose job has ended, by what the agents say now; they are forgotten here.
    /// An agent too old to say when its job ends (before 0.6) keeps its loan while it lives.
    pub fn due(&mut self, agents: &[LiveAgent]) -> Vec<Loan> {
        let running = |loan: &Loan| {
            agents.iter().any(|a| {
                a.endpoint.pid == loan.pid
                    && (!says_when_done(a.info.agent_version.as_deref().unwrap_or(""))
                        || a.info.room_job == Some(loan.need)
                        || a.info.need.as_ref().is_some_and(|n| n.id == loan.need))
            })
        };
        let (kept, due) = self.loans.drain(..).partition(running);
        self.loans = kept;
        due
    }

    /// How many are outstanding.
    pub fn len(&self) -> usize {
        self.loans.len()
    }

    /// None outstanding.
    pub fn is_empty(&self) -> bool {
        self.loans.is_empty()
    }
}

/// True for an agent that reports `room_job` (0.6 and later).
fn says_when_done(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (0, 6)
}

/// Wakes every engine of `loan`, all at once.
pub fn give_back(loan: Loan) -> HandedBack {
    let woke = super::each_in_parallel(loan.engines, |e| {
        (
            e.name().to_string(),
            e.wake().map(|_| ()).map_err(|e| e.to_string()),
        )
    });
    HandedBack {
        who: loan.who,
        woke,
    }
}
