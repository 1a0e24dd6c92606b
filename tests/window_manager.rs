//! The real window under a real window manager: Xvfb, openbox (which honours the same hints as
//! mutter, KWin and xfwm4), the vramdeck binary, and a private D-Bus session with a
//! StatusNotifierWatcher for the tray. Driven with xdotool; measured with xwininfo and xprop.
//! Linux only (the Windows tray and Run key are tested under Wine in the library's tests).
#![cfg(target_os = "linux")]

mod common;

use common::Process;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The programs this test drives, and the Debian packages that have them.
const TOOLS: [(&str, &str); 6] = [
    ("Xvfb", "xvfb"),
    ("openbox", "openbox"),
    ("xdotool", "xdotool"),
    ("xwininfo", "x11-utils"),
    ("xprop", "x11-utils"),
    ("dbus-daemon", "dbus-daemon"),
];

fn require_tools() {
    for (tool, package) in TOOLS {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "this test needs {tool}: apt-get install {package} (tests/run-all.sh does it)"
        );
    }
}

/// A display with a window manager, and a session bus.
struct Desktop {
    display: String,
    bus: String,
    _processes: Vec<Process>,
}

fn until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Desktop {
    fn start(width: u32, height: u32) -> Desktop {
        require_tools();
        // Xvfb picks a free display itself and writes its number when ready (-displayfd).
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{width}x{height}x24"),
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut number = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut number,
        )
        .unwrap();
        let xvfb = Process(child);
        let n: u32 = number.trim().parse().expect("Xvfb names its display");
        let display = format!(":{n}");
        let openbox = Process(
            Command::new("openbox")
                .args(["--sm-disable"])
                .env("DISPLAY", &display)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        until("openbox", Duration::from_secs(10), || {
            let out = Command::new("xprop")
                .args(["-root", "_NET_SUPPORTING_WM_CHECK"])
                .env("DISPLAY", &display)
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .contains("window id")
                .then_some(())
        });
        let mut dbus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(dbus.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        Desktop {
            display,
            bus: line.trim().to_string(),
            _processes: vec![xvfb, openbox, Process(dbus)],
        }
    }

    /// Runs an X tool on this display; its stdout.
    fn x(&self, tool: &str, args: &[&str]) -> String {
        let out = Command::new(tool)
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// vramdeck's window shown on screen, if any.
    fn shown_window(&self) -> Option<String> {
        self.x(
            "xdotool",
            &["search", "--onlyvisible", "--class", "vramdeck"],
        )
        .lines()
        .next()
        .map(str::to_string)
    }

    fn wait_shown(&self) -> String {
        until("vramdeck's window", Duration::from_secs(30), || {
            self.shown_window()
        })
    }

    /// (x, y, width, height) of window `id`, the inside of its frame.
    fn geometry(&self, id: &str) -> (i32, i32, i32, i32) {
        let info = self.x("xwininfo", &["-id", id]);
        let field = |name: &str| -> i32 {
            info.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {info}"))
        };
        (
            field("Absolute upper-left X:"),
            field("Absolute upper-left Y:"),
            field("Width:"),
            field("Height:"),
        )
    }

    /// Waits until the window's size settles on something `ok` accepts.
    fn wait_geometry(
        &self,
        id: &str,
        what: &str,
        ok: impl Fn((i32, i32, i32, i32)) -> bool,
    ) -> (i32, i32, i32, i32) {
        let mut last = (0, 0, 0, 0);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            last = self.geometry(id);
            if ok(last) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(150));
        }
        panic!("{what}: the window stayed at {last:?}");
    }

    fn on_top(&self, id: &str) -> bool {
        self.x("xprop", &["-id", id, "_NET_WM_STATE"])
            .contains("_NET_WM_STATE_ABOVE")
    }

    /// Keys pressed in the window (activated first, as a user would).
    fn keys(&self, id: &str, keys: &str) {
        self.x("xdotool", &["windowactivate", "--sync", id]);
        std::thread::sleep(Duration::from_millis(200));
        self.x("xdotool", &["key", "--clearmodifiers", keys]);
    }
}

/// The vramdeck window in demo mode, its files in `home`.
fn vramdeck(desktop: &Desktop, home: &Path, args: &[&str]) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_vramdeck"))
        .arg("--demo")
        .args(args)
        .env("DISPLAY", &desktop.display)
        .env("DBUS_SESSION_BUS_ADDRESS", &desktop.bus)
        .env_remove("WAYLAND_DISPLAY")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("VRAMDECK_CONFIG_DIR", home.join("config"))
        .env("VRAMDECK_DATA_DIR", home.join("data"))
        .env("VRAMDECK_AGENT_DIR", home.join("agents"))
        .env("LC_ALL", "C.UTF-8")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Process(child)
}

fn write_settings(home: &Path, toml: &str) {
    std::fs::create_dir_all(home.join("config")).unwrap();
    std::fs::write(home.join("config/settings.toml"), toml).unwrap();
}

fn wait_exit(app: &mut Process, what: &str) -> std::process::ExitStatus {
    until(what, Duration::from_secs(15), || app.0.try_wait().unwrap())
}

#[test]
fn the_first_window_fits_the_screen_and_comes_back_where_it_was_left() {
    let desktop = Desktop::start(1280, 720);
    let home = tempfile::tempdir().unwrap();
    let mut app = vramdeck(&desktop, home.path(), &[]);
    let id = desktop.wait_shown();
    // 1480x900 asked for; a 1280x720 screen gets a window that fits it.
    desktop.wait_geometry(&id, "fitted to the screen", |(x, y, w, h)| {
        w <= 1280 && h <= 720 && x >= 0 && y >= 0 && x + w <= 1280 && y + h <= 720
    });
    desktop.x("xdotool", &["windowsize", &id, "900", "560"]);
    desktop.x("xdotool", &["windowmove", &id, "120", "90"]);
    let left = desktop.wait_geometry(&id, "moved and resized", |(x, y, w, h)| {
        w == 900 && h == 560 && (x - 120).abs() < 40 && (y - 90).abs() < 60
    });
    desktop.keys(&id, "ctrl+q");
    assert!(wait_exit(&mut app, "Ctrl+Q to quit").success());
    assert!(home.path().join("data/window.ron").exists());

    let _again = vramdeck(&desktop, home.path(), &[]);
    let id = desktop.wait_shown();
    desktop.wait_geometry(&id, "the window where it was left", |g| {
        g.2 == left.2 && g.3 == left.3 && (g.0 - left.0).abs() <= 2 && (g.1 - left.1).abs() <= 2
    });
}

#[test]
fn the_mini_view_is_small_on_top_comes_back_mini_and_full_view_gives_back_the_window() {
    let desktop = Desktop::start(1920, 1080);
    let home = tempfile::tempdir().unwrap();
    let mut app = vramdeck(&desktop, home.path(), &[]);
    let id = desktop.wait_shown();
    desktop.x("xdotool", &["windowsize", &id, "1000", "700"]);
    desktop.wait_geometry(&id, "resized", |g| g.2 == 1000 && g.3 == 700);
    assert!(
        !desktop.on_top(&id),
        "the full window is not above others by default"
    );
    desktop.keys(&id, "ctrl+shift+m");
    let mini = vramdeck::ui::mini_view::size(3);
    desktop.wait_geometry(&id, "the mini view", |g| {
        g.2 <= mini.x as i32 + 2 && g.3 <= mini.y as i32 + 2
    });
    assert!(
        desktop.on_top(&id),
        "the mini view stays above other windows"
    );
    desktop.keys(&id, "ctrl+q");
    assert!(wait_exit(&mut app, "Ctrl+Q in the mini view").success());

    // Started again: mini, on top, not a full-size window with the mini content in a corner.
    let _again = vramdeck(&desktop, home.path(), &[]);
    let id = desktop.wait_shown();
    desktop.wait_geometry(&id, "the mini view after a restart", |g| {
        g.2 <= mini.x as i32 + 2 && g.3 <= mini.y as i32 + 2
    });
    assert!(desktop.on_top(&id));
    // "Full view" gives back the 1000x700 window of the first run.
    desktop.keys(&id, "ctrl+shift+m");
    desktop.wait_geometry(&id, "the full window given back", |g| {
        g.2 == 1000 && g.3 == 700
    });
    until(
        "the full window back at its level",
        Duration::from_secs(5),
        || (!desktop.on_top(&id)).then_some(()),
    );
}

#[test]
fn always_on_top_holds_for_the_full_window_when_chosen() {
    let desktop = Desktop::start(1280, 720);
    let home = tempfile::tempdir().unwrap();
    write_settings(home.path(), "always_on_top = true\n");
    let _app = vramdeck(&desktop, home.path(), &[]);
    let id = desktop.wait_shown();
    until("_NET_WM_STATE_ABOVE", Duration::from_secs(10), || {
        desktop.on_top(&id).then_some(())
    });
}

#[test]
fn a_broken_window_file_is_ignored_and_the_window_opens() {
    let desktop = Desktop::start(1280, 720);
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("data")).unwrap();
    std::fs::write(
        home.path().join("data/window.ron"),
        b"(\"window\": \x00\xff garbage",
    )
    .unwrap();
    let _app = vramdeck(&desktop, home.path(), &[]);
    let id = desktop.wait_shown();
    desktop.wait_geometry(&id, "a window of a usable size", |g| {
        g.2 >= 640 && g.3 >= 420
    });
}

/// Items registered with the watcher: (sender, what it registered).
type Registered = Arc<Mutex<Vec<(String, String)>>>;

/// The StatusNotifierItem `ToolTip` property: icon name, icon pixmaps, title, text.
type SniToolTip = (String, Vec<(i32, i32, Vec<u8>)>, String, String);

/// A StatusNotifierWatcher, as a desktop's panel runs one: takes items' registrations.
struct Watcher {
    items: Registered,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(
        &self,
        service: &str,
        #[zbus(header)] header: zbus::message::Header<'_>,
    ) {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        self.items
            .lock()
            .unwrap()
            .push((sender, service.to_string()));
    }

    fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.clone())
            .collect()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// The watcher on `desktop`'s bus, and the items registered with it.
fn tray_host(desktop: &Desktop) -> (zbus::blocking::Connection, Registered) {
    let items = Arc::new(Mutex::new(Vec::new()));
    let connection = zbus::blocking::connection::Builder::address(desktop.bus.as_str())
        .unwrap()
        .name("org.kde.StatusNotifierWatcher")
        .unwrap()
        .serve_at(
            "/StatusNotifierWatcher",
            Watcher {
                items: items.clone(),
            },
        )
        .unwrap()
        .build()
        .unwrap();
    (connection, items)
}

/// The item vramdeck registered: (bus name, object path).
fn registered_item(items: &Registered) -> (String, String) {
    until("vramdeck's tray icon", Duration::from_secs(30), || {
        let items = items.lock().unwrap();
        let (sender, service) = items.first()?;
        Some(if service.starts_with('/') {
            (sender.clone(), service.clone())
        } else {
            (service.clone(), "/StatusNotifierItem".to_string())
        })
    })
}

fn item_proxy<'a>(
    connection: &'a zbus::blocking::Connection,
    item: &'a (String, String),
    interface: &'a str,
    path: Option<&'a str>,
) -> zbus::blocking::Proxy<'a> {
    zbus::blocking::Proxy::new(
        connection,
        item.0.as_str(),
        path.unwrap_or(item.1.as_str()),
        interface,
    )
    .unwrap()
}

/// Clicks the tray menu's entry labelled `label`, as the panel does.
fn click_menu(connection: &zbus::blocking::Connection, item: &(String, String), label: &str) {
    let status = item_proxy(connection, item, "org.kde.StatusNotifierItem", None);
    let menu: zbus::zvariant::OwnedObjectPath = status.get_property("Menu").unwrap();
    let menu = item_proxy(
        connection,
        item,
        "com.canonical.dbusmenu",
        Some(menu.as_str()),
    );
    let ids: Vec<i32> = (1..8).collect();
    let (entries,): (
        Vec<(
            i32,
            std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
        )>,
    ) = menu
        .call("GetGroupProperties", &(ids, vec!["label"]))
        .unwrap();
    let id = entries
        .iter()
        .find(|(_, props)| {
            props
                .get("label")
                .and_then(|v| String::try_from(v.try_clone().unwrap()).ok())
                .is_some_and(|l| l == label)
        })
        .map(|(id, _)| *id)
        .unwrap_or_else(|| panic!("no menu entry {label}"));
    let data = zbus::zvariant::Value::from(0i32);
    let _: () = menu.call("Event", &(id, "clicked", data, 0u32)).unwrap();
}

#[test]
fn closing_keeps_it_in_the_tray_whose_icon_shows_vram_and_brings_it_back_and_quits() {
    let desktop = Desktop::start(1280, 720);
    let (connection, items) = tray_host(&desktop);
    let home = tempfile::tempdir().unwrap();
    write_settings(home.path(), "close_to_tray = true\n");
    let mut app = vramdeck(&desktop, home.path(), &[]);
    let id = desktop.wait_shown();
    let item = registered_item(&items);
    let status = item_proxy(&connection, &item, "org.kde.StatusNotifierItem", None);
    // VRAM at a glance: one line per GPU in the tooltip.
    let tooltip = until("the tooltip's readings", Duration::from_secs(15), || {
        let (_, _, title, text): SniToolTip = status.get_property("ToolTip").ok()?;
        text.contains("GPU 2").then_some(format!("{title}\n{text}"))
    });
    assert!(tooltip.contains("demo"), "{tooltip}");
    assert!(
        tooltip.contains("GPU 0") && tooltip.contains(" / "),
        "{tooltip}"
    );

    // The window manager's close (Alt+F4 in openbox) hides it; vramdeck keeps running.
    desktop.keys(&id, "alt+F4");
    until("the window hidden", Duration::from_secs(10), || {
        desktop.shown_window().is_none().then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(app.0.try_wait().unwrap().is_none(), "closing quit vramdeck");
    // The icon's click brings it back.
    let _: () = status.call("Activate", &(0i32, 0i32)).unwrap();
    desktop.wait_shown();
    // Quit from the tray's menu ends it.
    click_menu(&connection, &item, "Quit vramdeck");
    assert!(wait_exit(&mut app, "Quit in the tray menu").success());
}

#[test]
fn a_hidden_start_stays_in_the_tray_and_without_a_tray_the_window_shows_and_close_quits() {
    let desktop = Desktop::start(1280, 720);
    let home = tempfile::tempdir().unwrap();
    write_settings(home.path(), "close_to_tray = true\n");
    // No watcher on this bus: no tray, so neither --hidden nor closing may hide the window.
    let mut app = vramdeck(&desktop, home.path(), &["--hidden"]);
    let id = desktop.wait_shown();
    std::thread::sleep(Duration::from_secs(2));
    assert!(desktop.shown_window().is_some(), "hidden with no way back");
    desktop.keys(&id, "alt+F4");
    assert!(wait_exit(&mut app, "closing without a tray").success());

    let (connection, items) = tray_host(&desktop);
    let _app = vramdeck(&desktop, home.path(), &["--hidden"]);
    let item = registered_item(&items);
    // eframe maps the window for its first frame; it is gone right after.
    until("the window hidden", Duration::from_secs(15), || {
        desktop.shown_window().is_none().then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(desktop.shown_window().is_none(), "came back by itself");
    click_menu(&connection, &item, "Show / hide window");
    desktop.wait_shown();
}
