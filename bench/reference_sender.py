"""A bare reference sender: what this machine can post, to measure load mode against (bench/bench.py).

    python bench/reference_sender.py URL --seconds 5 [--client aiohttp|httpx] [--concurrency 16] [--rsa KEY.pem]

One asyncio loop keeps `concurrency` POSTs in flight on keep-alive connections. With --rsa, one signing process
makes every body fresh (a new id spliced in) and signs it (RSA-2048 PKCS#1 v1.5, SHA-256, base64 X-Signature, as
Accredit does), in batches, two batches ahead; without it, the same bytes are posted again and again. Prints one
JSON line: sent, failed, seconds, rate. No project code on the hot path: it is the yardstick.
"""

import argparse
import asyncio
import base64
import json
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

BODY = b'{"id":"%s","type":"BadgeExportZipFile.Created","data":{"url":"https://example.org/badges.zip"}}'
_key = None


def sign_batch(key_path: str, n: int) -> list[tuple[bytes, dict]]:
    global _key
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    if _key is None:
        _key = serialization.load_pem_private_key(open(key_path, "rb").read(), password=None)
    out = []
    for _ in range(n):
        body = BODY % str(uuid.uuid4()).encode()
        sig = base64.b64encode(_key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()
        out.append((body, {"Content-Type": "application/json", "X-Signature": sig}))
    return out


async def send(args) -> dict:
    plain = [(BODY % b"same", {"Content-Type": "application/json"})] * 64
    loop, queue = asyncio.get_running_loop(), asyncio.Queue(256)
    pool = ProcessPoolExecutor(1, mp_context=get_context("spawn")) if args.rsa else None
    if pool:
        await loop.run_in_executor(pool, sign_batch, args.rsa, 1)  # start the process, load the key
    stop = time.perf_counter() + args.seconds

    async def feed():  # two batches in flight in the signing process, so it never waits for the loop
        pending = [loop.run_in_executor(pool, sign_batch, args.rsa, 32) for _ in range(2)]
        while time.perf_counter() < stop:
            for item in await pending.pop(0):
                await queue.put(item)
            pending.append(loop.run_in_executor(pool, sign_batch, args.rsa, 32))

    if args.client == "aiohttp":
        import aiohttp

        client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency))
        post = lambda b, h: client.post(args.url, data=b, headers=h)  # noqa: E731
    else:
        import httpx

        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=args.concurrency))
        post = lambda b, h: client.post(args.url, content=b, headers=h)  # noqa: E731
    counts = {"sent": 0, "failed": 0}

    async def worker(i):
        while (left := stop - time.perf_counter()) > 0:
            try:
                body, headers = await asyncio.wait_for(queue.get(), left) if pool else plain[i]
            except TimeoutError:
                break
            resp = await post(body, headers)
            status = resp.status if args.client == "aiohttp" else resp.status_code
            await resp.read() if args.client == "aiohttp" else None
            counts["sent" if status == 200 else "failed"] += 1

    start, cpu = time.perf_counter(), time.process_time()
    feeder = asyncio.ensure_future(feed()) if pool else None
    await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if feeder:
        feeder.cancel()
        pool.shutdown(cancel_futures=True)
    await (client.close() if args.client == "aiohttp" else client.aclose())
    rate, cpu_us = counts["sent"] / elapsed, cpu / max(1, counts["sent"]) * 1e6  # cpu: this process, not the signer
    return {**counts, "seconds": elapsed, "rate": rate, "cpu_us_per_request": cpu_us, "client": args.client}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--client", choices=("aiohttp", "httpx"), default="aiohttp")
    ap.add_argument("--rsa", metavar="KEY.pem", help="private key: sign fresh bodies in one signing process")
    print(json.dumps(asyncio.run(send(ap.parse_args()))), flush=True)
    sys.exit(0)
