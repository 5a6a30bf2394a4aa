"""Live-control latency and load: OSC request-to-reply vs bare generation, and a burst of requests.

1. Latency: one 4 s note with the full mel_prog_hires architecture (random weights) on CPU, measured
   alternately as bare `Synth.generate` and as a `/synthesize` round trip over UDP (queue, generation,
   WAV write, reply), so both see the same machine load. Reports the median of each and their ratio.
2. Burst: `--burst` requests sent at once to a server with a bounded queue; counts replies (every request
   must get exactly one: /synthesized or /error busy), checks the server still answers, and reports the
   process's resident memory before, after one burst and after a second (bounded: no growth per burst).

    python benchmarks/serve_latency.py [--repeats 5] [--burst 200] [--burst-preset mel_prog_hires]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import build_msg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from ganspacesynth.interfaces.osc import OSCServer  # noqa: E402
from ganspacesynth.interfaces.session import Session  # noqa: E402
from ganspacesynth.model.config import preset  # noqa: E402
from ganspacesynth.model.files import save_model  # noqa: E402
from ganspacesynth.model.generator import Generator  # noqa: E402
from ganspacesynth.synth import Synth  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_synth(name: str, folder: Path) -> Synth:
    torch.manual_seed(0)
    cfg = preset(name)
    path = save_model(folder / f"{name}.safetensors", cfg, Generator(cfg).state_dict())
    return Synth.load(path, device="cpu")


def serve(synth: Synth, folder: Path, queue_size: int):
    session = Session(synth, allowed_dirs=[folder], out_dir=folder / "out", queue_size=queue_size, keep=50)
    server = OSCServer(session, "127.0.0.1", 0).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(600)
    return session, server, sock


def ask(sock, address, server, *args):
    sock.sendto(build_msg(address, list(args)).dgram, server.address)
    data, _ = sock.recvfrom(65535)
    return OscMessage(data)


def latency(repeats: int, folder: Path) -> dict:
    synth = make_synth("mel_prog_hires", folder)
    session, server, sock = serve(synth, folder, 4)
    z = synth.random_z(1, 0)
    synth.generate(z, pitch=60)  # warm-up both paths
    ask(sock, "/synthesize_z", server, 60.0)
    bare, served = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        synth.generate(z, pitch=60)
        bare.append(time.perf_counter() - t)
        t = time.perf_counter()
        msg = ask(sock, "/synthesize_z", server, 60.0)
        served.append(time.perf_counter() - t)
        assert msg.address == "/synthesized" and msg.params[1] == 64000, msg.params
    server.shutdown()
    session.close()
    b, s = statistics.median(bare), statistics.median(served)
    return {"bare_s": bare, "served_s": served, "bare_median_s": b, "served_median_s": s, "ratio": s / b}


def burst(n: int, preset_name: str, queue_size: int, folder: Path) -> dict:
    synth = make_synth(preset_name, folder)
    session, server, sock = serve(synth, folder, queue_size)
    ask(sock, "/synthesize_z", server, 60.0)
    rss = [rss_mib()]
    rounds = []
    for _ in range(2):
        t = time.perf_counter()
        for i in range(n):
            sock.sendto(build_msg("/synthesize_z", ["id", i, 60.0]).dgram, server.address)
        replies: dict[int, list[str]] = {}
        while sum(len(v) for v in replies.values()) < n:
            msg = OscMessage(sock.recvfrom(65535)[0])
            replies.setdefault(msg.params[-1], []).append(msg.address if msg.address != "/error" else msg.params[0][:4])
        kinds = [v[0] for v in replies.values()]
        rounds.append({"requests": n, "replied": len(replies), "one_reply_each": all(len(v) == 1 for v in replies.values()),
                       "served": kinds.count("/synthesized"), "refused_busy": kinds.count("busy"),
                       "seconds": time.perf_counter() - t})
        rss.append(rss_mib())
    alive = ask(sock, "/ping", server).address == "/pong"
    server.shutdown()
    session.close()
    return {"preset": preset_name, "queue_size": queue_size, "rounds": rounds, "alive_after": alive, "rss_mib": rss,
            "rss_growth_second_burst_mib": rss[2] - rss[1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--burst-preset", default="mel_prog_hires", choices=["tiny", "fast", "mel_prog_hires"])
    ap.add_argument("--queue-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lat = latency(args.repeats, folder)
        print(f"one 4 s note (mel_prog_hires, CPU, {torch.get_num_threads()} threads): bare {lat['bare_median_s']:.3f} s, "
              f"OSC request-to-reply {lat['served_median_s']:.3f} s, ratio {lat['ratio']:.3f} (target <= 1.3)")
        b = burst(args.burst, args.burst_preset, args.queue_size, folder)
        for i, r in enumerate(b["rounds"]):
            print(f"burst {i + 1}: {r['requests']} requests -> {r['served']} served, {r['refused_busy']} refused busy, "
                  f"one reply each: {r['one_reply_each']}, {r['seconds']:.1f} s")
        print(f"server alive after: {b['alive_after']}; RSS MiB {['%.0f' % v for v in b['rss_mib']]} "
              f"(growth over the second burst {b['rss_growth_second_burst_mib']:+.1f} MiB)")
    write_result("serve_latency", {"latency": lat, "burst": b, "threads": torch.get_num_threads()}, args.out)


if __name__ == "__main__":
    from _common import run

    run(main)
