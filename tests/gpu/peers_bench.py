"""vramdeck beside its peers on one GPU box, in one run: CPU time and peak RSS of each monitor
at the same interval, for the same duration, with the same busy torch process on the GPU.
Run by tests/gpu/peers_bench.sh (which installs the peers); not run in CI (no GPU there).

CPU is read from the kernel's per-thread scheduler statistics (/proc/PID/task/*/schedstat,
nanoseconds), plus the CPU of children the monitor waited for (/proc/PID/stat cutime and
cstime: the subprocess script's nvidia-smi calls), over the measured window only, after a
warm-up, so start-up (imports, NVML init) is not counted. RSS is the monitor's peak (VmHWM).
Terminal monitors get a pseudo-terminal of 50 x 200 cells whose output is read and dropped.

Usage: python3 peers_bench.py INTERVAL_S SECONDS WARMUP_S NAME=COMMAND ...
"""
import fcntl
import os
import pty
import shlex
import signal
import struct
import subprocess
import sys
import termios
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    total_ns = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total_ns += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended between listing and reading
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): cutime and cstime are fields 16 and 17.
    children = (int(fields[13]) + int(fields[14])) / TICK
    return total_ns / 1e9 + children


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def drain(fd):
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


def measure(command, seconds, warmup):
    """(share of one core in %, peak RSS MiB) of `command` over `seconds` after `warmup`."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    env = dict(os.environ, TERM="xterm-256color")
    process = subprocess.Popen(["sh", "-c", "exec " + command], stdin=slave, stdout=slave,
                               stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    threading.Thread(target=drain, args=(master,), daemon=True).start()
    time.sleep(warmup)
    if process.poll() is not None:
        return None, f"exited with {process.returncode} during the warm-up"
    c0, t0 = cpu_seconds(process.pid), time.monotonic()
    time.sleep(seconds)
    if process.poll() is not None:
        return None, f"exited with {process.returncode}"
    c1, t1 = cpu_seconds(process.pid), time.monotonic()
    rss = peak_rss_mib(process.pid)
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    os.close(master)
    return (c1 - c0) / (t1 - t0) * 100, rss


def main():
    interval, seconds, warmup = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    rows = []
    for spec in sys.argv[4:]:
        name, command = spec.split("=", 1)
        share, rss = measure(command, seconds, warmup)
        rows.append((name, share, rss))
        shown = "failed: " + rss if share is None else f"{share:7.2f} % of a core, peak RSS {rss:7.1f} MiB"
        print(f"  {name:<34} {shown}", flush=True)
    base = {n: s for n, s, _ in rows if s is not None}
    print(f"\nRatios at {interval:g} s ({seconds:g} s measured after {warmup:g} s):")
    for a, b in [("vramdeck window (EGL, NVIDIA)", "nvtop"), ("vramdeck log", "nvidia-smi -lms"),
                 ("vramdeck serve", "nvidia-smi -lms"), ("vramdeck log", "nvitop"),
                 ("vramdeck log", "gpustat"), ("vramdeck log", "subprocess script")]:
        if a in base and b in base and base[b] > 0:
            print(f"  {a} / {b}: {base[a] / base[b]:.2f}")


if __name__ == "__main__":
    main()
