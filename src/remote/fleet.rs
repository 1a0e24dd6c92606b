//! This machine's GPUs and every remote host's, as one [`GpuSource`] for the sampler: each
//! GPU keeps its place (and its history) for the whole session, a remote GPU carries its
//! host's name, one that has not been heard from for three intervals is marked stale, and
//! readings a host missed arrive as back-fill before its next live one. Remote hosts are
//! read by their own threads, so a slow host never holds up a sample.

use super::{HostConfig, HostState, RemoteHost, gpu_key};
use crate::telemetry::{Backfilled, GpuSample, GpuSource, RemoteOrigin, SourceError, SourceKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The remote hosts of a window; the window adds and removes, the sampler reads.
#[derive(Clone, Default)]
pub struct Fleet(Arc<Mutex<Vec<RemoteHost>>>);

impl Fleet {
    fn lock(&self) -> MutexGuard<'_, Vec<RemoteHost>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts reading a host; an address that cannot be used is refused with a sentence.
    pub fn add(&self, config: HostConfig) -> Result<(), String> {
        if self
            .lock()
            .iter()
            .any(|h| h.config().address.trim() == config.address.trim())
        {
            return Err(crate::t!(
                "hosts-already-listed",
                address = config.address.trim()
            ));
        }
        let host = RemoteHost::start(config)?;
        self.lock().push(host);
        Ok(())
    }

    /// Stops reading the host added as `address`.
    pub fn remove(&self, address: &str) {
        self.lock().retain(|h| h.config().address != address);
    }

    /// The hosts' configurations and states, in the order they were added.
    pub fn hosts(&self) -> Vec<(HostConfig, HostState)> {
        self.lock()
            .iter()
            .map(|h| (h.config().clone(), h.state()))
            .collect()
    }

    /// Asks the host added as `address` to free memory. By address, not by the name the host
    /// gives itself: two hosts may call themselves the same.
    pub fn free(&self, address: &str, level: crate::release::FreeLevel) {
        if let Some(h) = self.lock().iter().find(|h| h.config().address == address) {
            h.free(level);
        }
    }

    /// True when no host was added.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// Where one slot's GPU lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum SlotKey {
    Local(u32),
    Remote { address: String, gpu: String },
}

/// The local source (if this machine has GPUs) and the fleet, as one source.
pub struct FleetSource {
    local: Option<Box<dyn GpuSource>>,
    local_kind: SourceKind,
    fleet: Fleet,
    slots: Vec<SlotKey>,
    /// Each key's place in `slots`: a lookup per GPU per reading must not scan.
    places: HashMap<SlotKey, usize>,
    last: Vec<Option<GpuSample>>,
    backfill: Vec<Backfilled>,
    removed: Vec<usize>,
}

impl FleetSource {
    /// `local` is this machine's source (`None` when it has no GPU and hosts are watched);
    /// `why_no_local` says why there is none.
    pub fn new(local: Option<Box<dyn GpuSource>>, why_no_local: &str, fleet: Fleet) -> Self {
        let local_kind = match &local {
            Some(s) => s.kind(),
            None => SourceKind::RemoteOnly {
                reason: why_no_local.to_string(),
            },
        };
        FleetSource {
            local,
            local_kind,
            fleet,
            slots: Vec::new(),
            places: HashMap::new(),
            last: Vec::new(),
            backfill: Vec::new(),
            removed: Vec::new(),
        }
    }

    fn slot_of(&mut self, key: SlotKey) -> usize {
        if let Some(&i) = self.places.get(&key) {
            return i;
        }
        self.slots.push(key.clone());
        self.last.push(None);
        self.places.insert(key, self.slots.len() - 1);
        self.slots.len() - 1
    }

    /// Drops the places of hosts no longer read (removed, or refused for what they sent),
    /// highest first, so every other GPU keeps its own history.
    fn drop_places_of_gone_hosts(&mut self, read: &[(String, HostState)]) {
        let before = self.removed.len();
        for slot in (0..self.slots.len()).rev() {
            if let SlotKey::Remote { address, .. } = &self.slots[slot]
                && !read.iter().any(|(a, s)| {
                    a == address && !matches!(s.status, super::HostStatus::Refused(_))
                })
            {
                self.slots.remove(slot);
                self.last.remove(slot);
                self.removed.push(slot);
            }
        }
        if self.removed.len() != before {
            let gone = &self.removed[before..];
            // Queued back-fill follows its GPU's new place, or goes with it.
            self.backfill.retain_mut(|b| {
                if gone.contains(&b.slot) {
                    return false;
                }
                b.slot -= gone.iter().filter(|g| **g < b.slot).count();
                true
            });
            self.places = self
                .slots
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, k)| (k, i))
                .collect();
        }
    }
}

impl GpuSource for FleetSource {
    fn kind(&self) -> SourceKind {
        self.local_kind.clone()
    }

    fn sample(&mut self) -> Result<Vec<GpuSample>, SourceError> {
        let local = match &mut self.local {
            Some(source) => source.sample()?,
            None => Vec::new(),
        };
        let now = Instant::now();
        let hosts: Vec<(String, HostState)> = {
            let hosts = self.fleet.lock();
            hosts
                .iter()
                .map(|h| {
                    let mut state = h.shared().lock();
                    let taken = HostState {
                        backfill: std::mem::take(&mut state.backfill),
                        ..state.clone()
                    };
                    (h.config().address.clone(), taken)
                })
                .collect()
        };
        self.drop_places_of_gone_hosts(&hosts);
        let mut fresh: Vec<Option<GpuSample>> = vec![None; self.slots.len()];
        for g in local {
            let slot = self.slot_of(SlotKey::Local(g.index));
            fresh.resize(self.slots.len(), None);
            fresh[slot] = Some(g);
        }
        for (address, state) in hosts {
            let stale = state.stale_seconds(now);
            for b in state.backfill {
                let slot = self.slot_of(SlotKey::Remote {
                    address: address.clone(),
                    gpu: b.key,
                });
                self.backfill.push(Backfilled {
                    slot,
                    points: b.points,
                });
            }
            for mut g in state.gpus {
                let slot = self.slot_of(SlotKey::Remote {
                    address: address.clone(),
                    gpu: gpu_key(&g),
                });
                fresh.resize(self.slots.len(), None);
                if let Some(r) = &mut g.remote {
                    r.stale_seconds = stale;
                    r.address.clone_from(&address);
                }
                fresh[slot] = Some(g);
            }
        }
        fresh.resize(self.slots.len(), None);
        let mut out = Vec::with_capacity(self.slots.len());
        for (slot, fresh) in fresh.into_iter().enumerate() {
            let sample = match fresh {
                Some(g) => g,
                // A GPU of a host that went quiet (or left its list): its last reading,
                // marked stale, so its card and history keep their place.
                None => match self.last[slot].clone() {
                    Some(mut g) => {
                        if let Some(r) = &mut g.remote {
                            r.stale_seconds.get_or_insert(0.0);
                        }
                        g
                    }
                    // Back-filled before its first live reading: nothing to show yet, but
                    // the place must be held. It is a remote GPU by construction.
                    None => GpuSample {
                        name: crate::t!("remote-waiting-reading"),
                        remote: Some(RemoteOrigin {
                            stale_seconds: Some(0.0),
                            address: match &self.slots[slot] {
                                SlotKey::Remote { address, .. } => address.clone(),
                                SlotKey::Local(_) => String::new(),
                            },
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                },
            };
            let mut g = sample;
            self.last[slot] = Some(g.clone());
            g.index = slot as u32;
            out.push(g);
        }
        Ok(out)
    }

    fn set_process_refresh(&mut self, every: Duration) {
        if let Some(local) = &mut self.local {
            local.set_process_refresh(every);
        }
    }

    fn take_backfill(&mut self) -> Vec<Backfilled> {
        // All of it at once: history files a reading older than its newest at the newest
        // time, so a back-fill split across readings would land after the live ones. What a
        // host can send is bounded instead (GPUs per host, points per GPU, bytes per gap).
        self.backfill.drain(..).collect()
    }

    fn take_removed(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.removed)
    }
}
