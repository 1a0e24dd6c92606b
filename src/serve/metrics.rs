//! `/metrics`: the newest reading in Prometheus' exposition format, under dcgm-exporter's
//! metric and label names (from its `etc/default-counters.csv` and the labels it puts on
//! every series: `gpu`, `UUID`, `pci_bus_id`, `device`, `modelName`, `Hostname`) so dashboards
//! built for DCGM work unchanged; `vramdeck_*` series carry what DCGM has no field for.

use crate::release::discovery::LiveAgent;
use crate::telemetry::{GpuSample, Snapshot};
use crate::units::MIB;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(String, String)>;
type GaugeFamily = Family<Labels, Gauge<f64, AtomicU64>>;

/// Totals of Free VRAM actions served since the start.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FreeTotals {
    /// Actions finished.
    pub actions: u64,
    /// Bytes NVML saw come back, summed over actions that released something.
    pub released_bytes: u64,
}

/// What one scrape shows.
pub struct ScrapeInput<'a> {
    /// The box's name, the `Hostname` label.
    pub host: &'a str,
    /// The newest reading, if any.
    pub snapshot: Option<&'a Snapshot>,
    /// Agents as last seen.
    pub agents: &'a [LiveAgent],
    /// Free VRAM so far.
    pub free: FreeTotals,
    /// Seconds the last NVML read took.
    pub read_seconds: f64,
}

/// A gauge per GPU: name, help, and how to read it from a sample.
type GpuGauge = (&'static str, &'static str, fn(&GpuSample) -> Option<f64>);

fn mib(bytes: u64) -> f64 {
    // Whole MiB, rounded as nvidia-smi rounds them: flooring read 11,634 where nvidia-smi
    // printed 11,635 for the same GPU on an H100 (tests/gpu/serve_proof.sh).
    ((bytes as f64) / MIB as f64).round()
}

/// A reading as the driver gave it: f32 values widened to f64 print as 671.2009887695313;
/// three decimals is more than any of them carries.
fn tidy(v: f64) -> f64 {
    (v * 1_000.0).round() / 1_000.0
}

const GPU_GAUGES: &[GpuGauge] = &[
    (
        "DCGM_FI_DEV_FB_USED",
        "Frame buffer memory in use, MiB",
        |g| Some(mib(g.memory.used.0)),
    ),
    (
        "DCGM_FI_DEV_FB_FREE",
        "Frame buffer memory not allocated, MiB",
        |g| Some(mib(g.memory.free.0)),
    ),
    (
        "DCGM_FI_DEV_FB_TOTAL",
        "Installed frame buffer memory, MiB",
        |g| Some(mib(g.memory.total.0)),
    ),
    (
        "DCGM_FI_DEV_FB_RESERVED",
        "Frame buffer memory the driver keeps, MiB",
        |g| Some(mib(g.memory.reserved.0)),
    ),
    (
        "DCGM_FI_DEV_GPU_UTIL",
        "Share of time a kernel ran, percent",
        |g| g.gpu_util.map(|p| f64::from(p.0)),
    ),
    (
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        "Share of time device memory was read or written, percent",
        |g| g.memory_util.map(|p| f64::from(p.0)),
    ),
    (
        "DCGM_FI_DEV_ENC_UTIL",
        "Video encoder (NVENC) utilisation, percent",
        |g| g.activity.encoder_util.map(|p| f64::from(p.0)),
    ),
    (
        "DCGM_FI_DEV_DEC_UTIL",
        "Video decoder (NVDEC) utilisation, percent",
        |g| g.activity.decoder_util.map(|p| f64::from(p.0)),
    ),
    ("DCGM_FI_DEV_GPU_TEMP", "Core temperature, degrees C", |g| {
        g.temperature.map(|t| f64::from(t.0))
    }),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw, W", |g| {
        g.power.map(|w| f64::from(w.0))
    }),
    (
        "DCGM_FI_DEV_POWER_MGMT_LIMIT",
        "Enforced power limit, W",
        |g| g.power_limit.map(|w| f64::from(w.0)),
    ),
    ("DCGM_FI_DEV_SM_CLOCK", "SM clock, MHz", |g| {
        g.sm_clock.map(|c| f64::from(c.0))
    }),
    ("DCGM_FI_DEV_MEM_CLOCK", "Memory clock, MHz", |g| {
        g.memory_clock.map(|c| f64::from(c.0))
    }),
    (
        "DCGM_FI_DEV_FAN_SPEED",
        "Fan speed, percent of its maximum",
        |g| g.fan.map(|p| f64::from(p.0)),
    ),
    (
        "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
        "NVML clock-event reason bits in force",
        |g| g.activity.clock_events.map(|e| e.0 as f64),
    ),
    (
        "vramdeck_pcie_rx_bytes_per_second",
        "PCIe traffic into the GPU, bytes per second",
        |g| g.activity.pcie_rx_mbs.map(|m| f64::from(m) * 1e6),
    ),
    (
        "vramdeck_pcie_tx_bytes_per_second",
        "PCIe traffic out of the GPU, bytes per second",
        |g| g.activity.pcie_tx_mbs.map(|m| f64::from(m) * 1e6),
    ),
    (
        "vramdeck_gpu_asleep",
        "1 while the GPU is runtime-suspended and was not woken to be read",
        |g| Some(if g.asleep { 1.0 } else { 0.0 }),
    ),
];

/// Every series name `/metrics` can carry, counters with the `_total` the exposition adds.
pub fn series_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = GPU_GAUGES.iter().map(|(name, _, _)| *name).collect();
    names.extend([
        "vramdeck_process_fb_used",
        "vramdeck_process_shared_used",
        "vramdeck_agent_torch_allocated_bytes",
        "vramdeck_agent_torch_reserved_bytes",
        "vramdeck_free_actions_total",
        "vramdeck_free_released_bytes_total",
        "vramdeck_read_seconds",
    ]);
    names
}

/// dcgm-exporter's label set for one GPU.
fn gpu_labels(host: &str, g: &GpuSample) -> Labels {
    vec![
        ("gpu".into(), g.index.to_string()),
        ("UUID".into(), g.uuid.clone().unwrap_or_default()),
        (
            "pci_bus_id".into(),
            g.pci_bus_id.clone().unwrap_or_default(),
        ),
        ("device".into(), format!("nvidia{}", g.index)),
        ("modelName".into(), g.name.clone()),
        ("Hostname".into(), host.to_string()),
    ]
}

fn gauge_family(registry: &mut Registry, name: &str, help: &str) -> GaugeFamily {
    let family = GaugeFamily::default();
    registry.register(name, help, family.clone());
    family
}

/// The exposition text for one scrape (OpenMetrics text, which Prometheus reads).
pub fn render(input: &ScrapeInput) -> String {
    let mut registry = Registry::default();
    if let Some(snapshot) = input.snapshot {
        for (name, help, read) in GPU_GAUGES {
            let family = gauge_family(&mut registry, name, help);
            for g in &snapshot.gpus {
                // A sleeping GPU has no readings: its series are absent, not zero.
                if g.asleep && *name != "vramdeck_gpu_asleep" {
                    continue;
                }
                if let Some(v) = read(g) {
                    family
                        .get_or_create(&gpu_labels(input.host, g))
                        .set(tidy(v));
                }
            }
        }
        let processes = gauge_family(
            &mut registry,
            "vramdeck_process_fb_used",
            "Frame buffer memory held by one process, MiB",
        );
        let shared = gauge_family(
            &mut registry,
            "vramdeck_process_shared_used",
            "System memory the GPU reaches for one process (Windows' shared GPU memory), MiB",
        );
        for g in &snapshot.gpus {
            for p in &g.processes {
                let mut labels = gpu_labels(input.host, g);
                labels.push(("pid".into(), p.pid.to_string()));
                labels.push(("process_name".into(), p.name.clone()));
                if let Some(used) = p.used {
                    processes.get_or_create(&labels).set(mib(used.0));
                }
                if let Some(bytes) = p.shared {
                    shared.get_or_create(&labels).set(mib(bytes.0));
                }
            }
        }
    }
    let allocated = gauge_family(
        &mut registry,
        "vramdeck_agent_torch_allocated_bytes",
        "Memory held by PyTorch tensors in a process with a vramdeck agent",
    );
    let reserved = gauge_family(
        &mut registry,
        "vramdeck_agent_torch_reserved_bytes",
        "Memory PyTorch's caching allocator holds (tensors and cache) in an agent's process",
    );
    for a in input.agents {
        let labels: Labels = vec![
            ("pid".into(), a.endpoint.pid.to_string()),
            ("process_name".into(), a.info.process_name.clone()),
            ("label".into(), a.info.label.clone().unwrap_or_default()),
            ("Hostname".into(), input.host.to_string()),
        ];
        if let Some(v) = a.info.allocated {
            allocated.get_or_create(&labels).set(v as f64);
        }
        if let Some(v) = a.info.reserved {
            reserved.get_or_create(&labels).set(v as f64);
        }
    }
    let host: Labels = vec![("Hostname".into(), input.host.to_string())];
    let actions = Family::<Labels, Counter<u64>>::default();
    registry.register(
        "vramdeck_free_actions",
        "Free VRAM actions finished",
        actions.clone(),
    );
    actions.get_or_create(&host).inc_by(input.free.actions);
    let released = Family::<Labels, Counter<u64>>::default();
    registry.register(
        "vramdeck_free_released_bytes",
        "Memory NVML saw come back after Free VRAM actions",
        released.clone(),
    );
    released
        .get_or_create(&host)
        .inc_by(input.free.released_bytes);
    gauge_family(
        &mut registry,
        "vramdeck_read_seconds",
        "Time the newest read of every GPU took",
    )
    .get_or_create(&host)
    .set(input.read_seconds);
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::sim::SimulatedGpus;
    use std::time::{Duration, SystemTime};

    fn demo_text() -> (String, Vec<GpuSample>) {
        let gpus = SimulatedGpus::demo("test").sample_at(Duration::from_secs(30));
        let snapshot = Snapshot {
            time: SystemTime::now(),
            gpus: gpus.clone(),
        };
        let text = render(&ScrapeInput {
            host: "box\"1",
            snapshot: Some(&snapshot),
            agents: &[],
            free: FreeTotals {
                actions: 2,
                released_bytes: 3 * MIB,
            },
            read_seconds: 0.001,
        });
        (text, gpus)
    }

    #[test]
    fn gpu_series_carry_dcgm_names_labels_and_whole_mib() {
        let (text, gpus) = demo_text();
        let g = &gpus[0];
        let line = text
            .lines()
            .find(|l| l.starts_with("DCGM_FI_DEV_FB_USED{") && l.contains("gpu=\"0\""))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            line.contains(&format!("UUID=\"{}\"", g.uuid.as_ref().unwrap())),
            "{line}"
        );
        assert!(line.contains("device=\"nvidia0\""), "{line}");
        assert!(
            line.contains(&format!("modelName=\"{}\"", g.name)),
            "{line}"
        );
        // A quote in a label value is escaped, not a broken line.
        assert!(line.contains("Hostname=\"box\\\"1\""), "{line}");
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert_eq!(value, (g.memory.used.0 as f64 / MIB as f64).round());
        assert!(text.contains("# TYPE DCGM_FI_DEV_GPU_UTIL gauge"));
        assert!(text.contains("vramdeck_free_released_bytes_total{Hostname=\"box\\\"1\"} 3145728"));
        assert!(text.contains("vramdeck_process_fb_used{"));
        assert!(text.trim_end().ends_with("# EOF"));
    }

    #[test]
    fn every_series_listed_is_served_and_the_dashboard_asks_for_no_other() {
        let (text, _) = demo_text();
        for name in series_names() {
            // Agents' series need an agent; the rest are always there.
            if !name.starts_with("vramdeck_agent_") {
                assert!(
                    text.lines().any(|l| l.starts_with(&format!("{name}{{"))),
                    "{name}"
                );
            }
        }
        let dashboard: serde_json::Value = serde_json::from_str(include_str!(
            "../../packaging/grafana/vramdeck-dashboard.json"
        ))
        .unwrap();
        let names = regex::Regex::new(r"\b(DCGM_FI_[A-Z_]+|vramdeck_[a-z_]+)").unwrap();
        let mut asked = 0;
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                for m in names.find_iter(expr) {
                    assert!(
                        series_names().contains(&m.as_str()),
                        "{} in {expr}",
                        m.as_str()
                    );
                    asked += 1;
                }
            }
        }
        assert!(asked >= 15, "{asked}");
    }

    #[test]
    fn an_asleep_gpu_has_no_readings_only_its_state() {
        let mut gpus = SimulatedGpus::demo("test").sample_at(Duration::ZERO);
        gpus[1].asleep = true;
        let snapshot = Snapshot {
            time: SystemTime::now(),
            gpus,
        };
        let text = render(&ScrapeInput {
            host: "h",
            snapshot: Some(&snapshot),
            agents: &[],
            free: FreeTotals::default(),
            read_seconds: 0.0,
        });
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("DCGM_FI_DEV_FB_USED{") && l.contains("gpu=\"1\""))
        );
        assert!(text.lines().any(|l| l.starts_with("vramdeck_gpu_asleep{")
            && l.contains("gpu=\"1\"")
            && l.ends_with(" 1.0")));
    }
}
