"""Driver for bench/serve/run.sh: starts each server on /dev/shm, runs the same clients
against it, reads the server's CPU and RSS from /proc, prints one Markdown table."""

import concurrent.futures as cf
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CAIRN = os.environ["CAIRN"]
AK, SK = "benchaccesskey", "benchsecretkey0123456789"
SERVERS = os.environ.get("SERVERS", "cairn s3s-fs garage rclone").split()
SMALL = int(os.environ.get("SMALL_COUNT", "2000"))
LARGE_MIB = int(os.environ.get("LARGE_MIB", "1024"))
UPLOADS = int(os.environ.get("UPLOADS", "256"))
UPLOAD_MIB = int(os.environ.get("UPLOAD_MIB", "8"))
TICK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print("serve-bench:", *a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, secs=30):
    end = time.time() + secs
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def cpu(pid):
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def hwm_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start(name, shm):
    port = free_port()
    env = dict(os.environ)
    data = shm / name
    data.mkdir(parents=True)
    if name == "cairn":
        env.update(CAIRN_SERVE_ACCESS_KEY=AK, CAIRN_SERVE_SECRET_KEY=SK)
        (data / "bench").mkdir()
        cmd = [CAIRN, "--root", str(data), "serve", "--listen", f"127.0.0.1:{port}"]
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        label = "cairn serve (local store)"
    elif name == "s3s-fs":
        (data / "bench").mkdir()
        cmd = ["s3s-fs", "--host", "127.0.0.1", "--port", str(port), "--access-key", AK,
               "--secret-key", SK, str(data)]
        # s3s-fs does not set TCP_NODELAY; bench/peers' shim does (as cairn serve does itself).
        shim = shm / "nodelay.so"
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(ROOT / "bench/peers/nodelay.c"),
                        "-ldl"], check=True)
        p = subprocess.Popen(cmd, env=dict(env, LD_PRELOAD=str(shim)), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        label = "s3s-fs 0.14.1 (TCP_NODELAY shim)"
    elif name == "rclone":
        (data / "bench").mkdir()
        rclone = subprocess.run(["pyenv", "which", "rclone"], capture_output=True, text=True).stdout.strip() \
            or shutil.which("rclone")
        cmd = [rclone, "serve", "s3", "--auth-key", f"{AK},{SK}", "--addr", f"127.0.0.1:{port}", str(data)]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ver = subprocess.run([rclone, "version"], capture_output=True, text=True).stdout.split()[1]
        label = f"rclone serve s3 {ver}"
    else:
        envfile = shm / "garage.env"
        env.update(CAIRN_SERVERS="garage", TMPDIR=str(data))
        subprocess.run([str(ROOT / "scripts/servers/start.sh"), str(envfile)], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        vals = dict(line.replace("export ", "", 1).split("=", 1) for line in envfile.read_text().splitlines()
                    if line.startswith("export "))
        vals = {k: v.strip("'\"") for k, v in vals.items()}
        state = vals["CAIRN_TEST_SERVERS_STATE"]
        # The garage process itself (start.sh may record a setsid wrapper): the one whose
        # command line names this state dir's config.
        pid = next(int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit() and
                   state in (d / "cmdline").read_bytes().decode(errors="replace")
                   and b"garage" in (d / "comm").read_bytes() and b"server" in (d / "cmdline").read_bytes())
        return {"label": "Garage " + subprocess.run(["garage", "--version"], capture_output=True, text=True).stdout.split()[1],
                "endpoint": vals["CAIRN_TEST_GARAGE_ENDPOINT"], "bucket": vals["CAIRN_TEST_GARAGE_BUCKET"],
                "ak": vals["CAIRN_TEST_GARAGE_ACCESS_KEY_ID"], "region": vals["CAIRN_TEST_GARAGE_REGION"], "sk": vals["CAIRN_TEST_GARAGE_SECRET_ACCESS_KEY"],
                "pid": pid, "stop": lambda: subprocess.run([str(ROOT / "scripts/servers/stop.sh"), str(envfile)],
                                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)}
    wait_port(port)

    def stop():
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    return {"label": label, "endpoint": f"http://127.0.0.1:{port}", "bucket": "bench", "ak": AK, "sk": SK, "region": "us-east-1",
            "pid": p.pid, "stop": stop}


def client_env(s):
    return dict(os.environ, AWS_ACCESS_KEY_ID=s["ak"], AWS_SECRET_ACCESS_KEY=s["sk"], AWS_REGION=s["region"])


def url(s, path):
    return f"s3://{s['bucket']}/{path}?endpoint={s['endpoint']}&path_style=true&provider=generic&region={s['region']}&checksum=false"


def measure(s, fn):
    c0, t0 = cpu(s["pid"]), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, cpu(s["pid"]) - c0


def run(name, shm, big):
    s = start(name, shm)
    try:
        env = client_env(s)
        rep = shm / f"{name}-small.json"
        _, _, small_cpu = measure(s, lambda: subprocess.run(
            [CAIRN, "-q", "bench", url(s, "small"), "--sizes", "4K", "--count", str(SMALL), "-j", "16",
             "--large", "0", "--report", str(rep)], env=env, check=True, stdout=subprocess.DEVNULL))
        res = {r["op"]: r for r in json.loads(rep.read_text())["results"]}
        ops = sum(r["ops"] for r in res.values() if r["op"] != "list") + sum(
            r["ops"] * max(1, r["objects_per_op"] // 1000) for r in res.values() if r["op"] == "list")
        _, up_s, up_cpu = measure(s, lambda: subprocess.run(
            [CAIRN, "-q", "cp", str(big), url(s, "big.bin")], env=env, check=True))
        out = shm / f"{name}-big.out"
        # One plain GET (`cat`): rclone serve s3 answers a ranged GET with the whole object,
        # so cairn cp's parallel ranges cannot run against it.
        with open(out, "wb") as f:
            _, down_s, down_cpu = measure(s, lambda: subprocess.run(
                [CAIRN, "-q", "cat", url(s, "big.bin")], env=env, check=True, stdout=f))
        assert out.stat().st_size == big.stat().st_size
        out.unlink()
        peak = hwm_mib(s["pid"])
        # 256 uploads at once: reset the peak, then read it after.
        Path(f"/proc/{s['pid']}/clear_refs").write_text("5")
        import boto3
        from botocore.config import Config
        body = os.urandom(UPLOAD_MIB << 20)
        cl = boto3.client("s3", endpoint_url=s["endpoint"], aws_access_key_id=s["ak"], aws_secret_access_key=s["sk"],
                          region_name=s["region"], config=Config(max_pool_connections=UPLOADS, s3={"addressing_style": "path"},
                                                                 retries={"max_attempts": 10, "mode": "standard"}))

        def put(i):
            cl.put_object(Bucket=s["bucket"], Key=f"conc/{i:04}", Body=body)

        t0 = time.perf_counter()
        errors = 0
        with cf.ThreadPoolExecutor(UPLOADS) as ex:
            for f in [ex.submit(put, i) for i in range(UPLOADS)]:
                try:
                    f.result()
                except Exception as e:  # counted, shown in the table
                    errors += 1
                    log(name, "upload failed:", e)
        conc_s = time.perf_counter() - t0
        conc_peak = hwm_mib(s["pid"])
        gib = LARGE_MIB / 1024
        return {
            "server": s["label"],
            "put_ops": res["put"]["ops_per_sec"], "get_ops": res["get"]["ops_per_sec"],
            "cpu_ms_per_op": small_cpu / ops * 1e3,
            "up_mbs": LARGE_MIB * 1.048576 / up_s, "down_mbs": LARGE_MIB * 1.048576 / down_s,
            "up_cpu_gib": up_cpu / gib, "down_cpu_gib": down_cpu / gib,
            "peak_mib": peak, "conc_peak_mib": conc_peak, "conc_s": conc_s, "conc_errors": errors,
        }
    finally:
        s["stop"]()


def main():
    shm = Path(tempfile.mkdtemp(prefix="cairn-serve-bench.", dir="/dev/shm"))
    try:
        big = shm / "big.bin"
        with open(big, "wb") as f:
            for _ in range(LARGE_MIB):
                f.write(os.urandom(1 << 20))
        rows = []
        for name in SERVERS:
            log("running", name)
            rows.append(run(name, shm, big))
            for p in shm.iterdir():
                if p != big:
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
        print(f"| server | 4 KiB PUT ops/s | 4 KiB GET ops/s | server CPU ms per 4 KiB op | {LARGE_MIB} MiB up MB/s | "
              f"down MB/s | server CPU s per GiB up | per GiB down | peak RSS MiB | RSS MiB, {UPLOADS} x {UPLOAD_MIB} MiB "
              f"concurrent uploads (s, failed) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['server']} | {r['put_ops']:.0f} | {r['get_ops']:.0f} | {r['cpu_ms_per_op']:.3f} | "
                  f"{r['up_mbs']:.0f} | {r['down_mbs']:.0f} | {r['up_cpu_gib']:.2f} | {r['down_cpu_gib']:.2f} | "
                  f"{r['peak_mib']:.0f} | {r['conc_peak_mib']:.0f} ({r['conc_s']:.1f} s, {r['conc_errors']} failed) |")
    finally:
        shutil.rmtree(shm, ignore_errors=True)


if __name__ == "__main__":
    main()
