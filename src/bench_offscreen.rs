//! `vramdeck bench --offscreen`: the window's real frames rendered with no display, through a
//! GPU's EGL device (`EGL_EXT_platform_device`, surfaceless), so the cost of a frame and the
//! process's memory with a hardware GL driver loaded can be measured on a headless GPU box.
//! The app is the one the window runs, on live readings, with a day of history behind it.

use crate::telemetry::history::HistoryConfig;
use crate::telemetry::sampler::{self, Sampler};
use eframe::egui_glow;
use eframe::glow::{self, HasContext};
use glutin::api::egl::{device::Device, display::Display};
use glutin::config::{ConfigSurfaceTypes, ConfigTemplateBuilder};
use glutin::context::{ContextApi, ContextAttributesBuilder, Version};
use glutin::display::GlDisplay;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `bench --offscreen` measured.
#[derive(Debug)]
pub struct OffscreenReport {
    /// The EGL device's vendor and the GL renderer ("NVIDIA Corporation / NVIDIA H100 …").
    pub renderer: String,
    /// Frames drawn.
    pub frames: u32,
    /// Median CPU time of this thread for one frame (layout, tessellation, GL calls).
    pub cpu_per_frame: Duration,
    /// Median wall time for one frame, until the GPU finished it.
    pub wall_per_frame: Duration,
    /// Resident memory after the frames, and its peak, KiB.
    pub rss_kib: (u64, u64),
    /// Where the resident memory is: the largest mappings by file (or `[heap]`, anonymous),
    /// KiB, largest first.
    pub rss_by_mapping: Vec<(String, u64)>,
    /// CPU of the whole process (frames, sampler, driver threads) per second of the run, as a
    /// share of one core: what the window costs at this frame rate.
    pub process_core_share: f64,
}

fn process_cpu_time() -> Duration {
    crate::platform::process::process_cpu_time()
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident KiB per mapped file from /proc/self/smaps (anonymous memory as "anonymous").
fn rss_by_mapping() -> Vec<(String, u64)> {
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps") else {
        return Vec::new();
    };
    let mut sums: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut current = String::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if first.contains('-') && first.chars().next().is_some_and(|c| c.is_ascii_hexdigit()) {
            // A mapping's header: address perms offset dev inode [path]
            let path = fields.nth(4).unwrap_or("");
            current = match path {
                "" => "anonymous".into(),
                p => p.rsplit('/').next().unwrap_or(p).to_string(),
            };
        } else if first == "Rss:" {
            let kib: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            *sums.entry(current.clone()).or_default() += kib;
        }
    }
    let mut list: Vec<(String, u64)> = sums.into_iter().collect();
    list.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    list.truncate(8);
    list
}

/// Renders `frames` frames of the window at `size` pixels, one every `every` (the window
/// repaints once per reading), with `hours` of simulated history before the live readings.
pub fn run(
    frames: u32,
    size: [u32; 2],
    every: Duration,
    hours: f64,
    demo: bool,
    software: bool,
) -> anyhow::Result<OffscreenReport> {
    let devices: Vec<Device> = Device::query_devices()
        .map_err(|e| anyhow::anyhow!("no EGL device (is libEGL.so.1 installed?): {e}"))?
        .collect();
    // A GPU's own device first (Mesa's software device where there is no other), or Mesa's
    // software renderer when asked: what a desktop without a GPU driver draws with.
    let is_mesa = |d: &&Device| d.extensions().contains("EGL_MESA_device_software");
    let device = if software {
        devices
            .iter()
            .find(is_mesa)
            .ok_or_else(|| anyhow::anyhow!("no Mesa software EGL device (install libegl-mesa0)"))?
    } else {
        devices
            .iter()
            .find(|d| !is_mesa(d))
            .or(devices.first())
            .ok_or_else(|| anyhow::anyhow!("EGL lists no device"))?
    };
    // SAFETY: no raw display is passed; the device comes from query_devices above.
    let display = unsafe { Display::with_device(device, None) }
        .map_err(|e| anyhow::anyhow!("cannot open the EGL device: {e}"))?;
    let template = ConfigTemplateBuilder::new()
        .with_surface_type(ConfigSurfaceTypes::empty())
        .build();
    // SAFETY: the template holds no raw window handle.
    let config = unsafe { display.find_configs(template) }
        .map_err(|e| anyhow::anyhow!("no EGL config: {e}"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("no EGL config"))?;
    let attributes = ContextAttributesBuilder::new()
        .with_context_api(ContextApi::OpenGl(Some(Version::new(3, 3))))
        .build(None);
    // SAFETY: the config belongs to this display; no window handle is involved.
    let context = unsafe { display.create_context(&config, &attributes) }
        .map_err(|e| anyhow::anyhow!("cannot create an OpenGL 3.3 context: {e}"))?
        .make_current_surfaceless()
        .map_err(|e| anyhow::anyhow!("cannot make the context current without a surface: {e}"))?;
    // SAFETY: the loader returns this display's function pointers, valid while it lives.
    let gl = Arc::new(unsafe {
        glow::Context::from_loader_function_cstr(|name| display.get_proc_address(name))
    });
    // SAFETY: plain GL calls on the current context.
    let renderer = unsafe {
        format!(
            "{} / {}",
            gl.get_parameter_string(glow::VENDOR),
            gl.get_parameter_string(glow::RENDERER)
        )
    };
    // The window draws into its default framebuffer; here a framebuffer of the window's size.
    // SAFETY: objects are created and bound on the current context.
    unsafe {
        let target = gl.create_renderbuffer().map_err(anyhow::Error::msg)?;
        gl.bind_renderbuffer(glow::RENDERBUFFER, Some(target));
        gl.renderbuffer_storage(
            glow::RENDERBUFFER,
            glow::RGBA8,
            size[0] as i32,
            size[1] as i32,
        );
        let framebuffer = gl.create_framebuffer().map_err(anyhow::Error::msg)?;
        gl.bind_framebuffer(glow::FRAMEBUFFER, Some(framebuffer));
        gl.framebuffer_renderbuffer(
            glow::FRAMEBUFFER,
            glow::COLOR_ATTACHMENT0,
            glow::RENDERBUFFER,
            Some(target),
        );
    }
    let mut painter = egui_glow::Painter::new(Arc::clone(&gl), "", None, false)
        .map_err(|e| anyhow::anyhow!("egui's painter: {e}"))?;

    let source = crate::telemetry::open_source(demo);
    let sampler = Sampler::spawn(source, every, HistoryConfig::default(), || {});
    let telemetry = sampler.telemetry();
    crate::bench::prefill(&telemetry, 1, hours, 1.0);
    let mut app = crate::ui::VramDeckApp::new(
        telemetry.clone(),
        None,
        crate::settings::Settings::default(),
        None,
        Vec::new(),
    );
    let ctx = egui::Context::default();
    // As the window does: the CJK font behind egui's own (its mapping shows in the RSS list).
    let _ = crate::ui::fonts::install(&ctx);
    let screen =
        egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(size[0] as f32, size[1] as f32));
    let started = Instant::now();
    let (mut cpu, mut wall) = (Vec::new(), Vec::new());
    let mut counted_from = None;
    // Two frames to settle (fonts, textures) are not counted.
    for i in 0..frames + 2 {
        let next = started + every * i;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        if i == 2 {
            counted_from = Some((Instant::now(), process_cpu_time()));
        }
        let (c0, w0) = (crate::bench::thread_cpu_time(), Instant::now());
        let input = egui::RawInput {
            screen_rect: Some(screen),
            time: Some(started.elapsed().as_secs_f64()),
            ..Default::default()
        };
        let mut output = ctx.run_ui(input, |ui| app.show(ui));
        let primitives =
            ctx.tessellate(std::mem::take(&mut output.shapes), output.pixels_per_point);
        painter.clear(
            size,
            crate::ui::app::window_background(&ctx.style_of(ctx.theme()).visuals)
                .to_normalized_gamma_f32(),
        );
        painter.paint_and_update_textures(
            size,
            output.pixels_per_point,
            &primitives,
            &mut output.textures_delta,
        );
        // SAFETY: a plain GL call on the current context.
        unsafe { gl.finish() };
        if i >= 2 {
            cpu.push(crate::bench::thread_cpu_time() - c0);
            wall.push(w0.elapsed());
        }
    }
    // Up to where the next frame would start, so the run covers whole intervals.
    std::thread::sleep((started + every * (frames + 2)).saturating_duration_since(Instant::now()));
    let process_core_share = counted_from.map_or(0.0, |(at, cpu0)| {
        (process_cpu_time() - cpu0).as_secs_f64() / at.elapsed().as_secs_f64()
    });
    let samples = sampler::lock(&telemetry).history.samples_total();
    drop(sampler);
    painter.destroy();
    drop(context);
    cpu.sort();
    wall.sort();
    if samples == 0 {
        anyhow::bail!("no reading arrived while rendering");
    }
    Ok(OffscreenReport {
        renderer,
        frames,
        cpu_per_frame: cpu[cpu.len() / 2],
        wall_per_frame: wall[wall.len() / 2],
        rss_kib: (status_kib("VmRSS:"), status_kib("VmHWM:")),
        rss_by_mapping: rss_by_mapping(),
        process_core_share,
    })
}
