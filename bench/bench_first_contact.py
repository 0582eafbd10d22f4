"""First-contact latency in `pigeon sim`, written to bench/results/first_contact.json.

The `default` scenario at seeds 1 to 5 (or those given), three runs per seed on the same traffic:
- short: as the node now works: each pair's first messages are Olm pre-key messages in the
  short form (envelope kind 5), sent at once to the recipient's intro tag;
- full: the same with the full form (kind 1, with the sender's identity bundle), what every
  first message was before the short form, and what a renewal still sends;
- established: every pair's session up beforehand (every message ordinary), the reference.
The sizes are measured here on real Olm messages of a one-block text (the sim models only the
difference to an ordinary message). The figure: the first texts' p50 latency beside the
ordinary messages' p50 of the reference run (ratio goal: at most 1.1). Simulated time, so the
figures do not depend on the machine.
Run: .venv/bin/python bench/bench_first_contact.py [seed ...]
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from pigeon.crypto.olm_account import OlmAccount
from pigeon.crypto.olm_session import OlmSession
from pigeon.crypto.olm_wire import Initiation, prekey_id, split_prekey
from pigeon.crypto.signing import SigningKey
from pigeon.mesh.fragment import fragment
from pigeon.messenger.envelope import (
    Inner,
    MessageEnvelope,
    PrekeyEnvelope,
    ShortPrekeyEnvelope,
    TextBody,
    encode_envelope,
    encode_inner,
)
from pigeon.sim.engine import PREKEY_EXTRA_BYTES, run_simulation
from pigeon.sim.scenario import load_scenario

RESULTS = Path(__file__).resolve().parent / "results" / "first_contact.json"
GOAL_RATIO = 1.1
SEEDS = (1, 2, 3, 4, 5)
NOW_S = 1_800_000_000.0
PACKET_HEADER_BYTES = 43  # a mesh envelope header with a 16-byte tag and no mailbox hint
KEYS = (
    "messages",
    "delivered",
    "first_contact_messages",
    "first_contact_latency_p50_s",
    "first_contact_latency_p95_s",
    "ordinary_latency_p50_s",
    "ordinary_latency_p95_s",
)


def envelope_sizes() -> dict[str, int]:
    """Bytes of a one-block text's envelope: ordinary, short pre-key and full pre-key."""
    alice = OlmAccount.create(SigningKey.generate(), NOW_S)
    bob = OlmAccount.create(SigningKey.generate(), NOW_S)
    opener = OlmSession.outbound(alice, bob.fallback_prekey_bundle())
    plaintext = encode_inner(Inner(bytes(16), bytes(32), TextBody(bytes(16), 0, "x" * 300)), b"")
    first = opener.encrypt_message(plaintext)
    keys, inner = split_prekey(first.ciphertext)
    short = ShortPrekeyEnvelope(
        alice.identity_key, prekey_id(keys.one_time_key), keys.base_key, inner
    )
    full = PrekeyEnvelope(Initiation(alice.identity_bundle(), first).to_bytes())
    answerer, _ = OlmSession.inbound(bob, alice.identity_bundle(), first)
    opener.decrypt_message(answerer.encrypt_message(plaintext))
    ordinary = MessageEnvelope(opener.encrypt_message(plaintext).ciphertext)
    return {
        "ordinary": len(encode_envelope(ordinary)),
        "short_prekey": len(encode_envelope(short)),
        "full_prekey": len(encode_envelope(full)),
    }


def _frames(envelope_bytes: int, frame_limit: int) -> int:
    return len(fragment(bytes(PACKET_HEADER_BYTES + envelope_bytes), frame_limit, 0))


def _run(job: tuple[int, str, int]) -> dict[str, object]:
    seed, form, extra = job
    scenario = load_scenario("default")
    established = form == "established"
    result = run_simulation(
        scenario, seed, sessions_established=established, prekey_extra_bytes=extra
    ).to_dict()
    return {key: result[key] for key in KEYS}


def _ratio(first: object, ordinary: object) -> float:
    if not isinstance(first, float) or not isinstance(ordinary, float):
        raise RuntimeError("a run delivered no message of its kind")
    return round(first / ordinary, 3)


def main() -> None:
    """The runs, the ratios, and the JSON file."""
    seeds = tuple(int(arg) for arg in sys.argv[1:]) or SEEDS
    sizes = envelope_sizes()
    short_extra = sizes["short_prekey"] - sizes["ordinary"]
    full_extra = sizes["full_prekey"] - sizes["ordinary"]
    if short_extra != PREKEY_EXTRA_BYTES:
        raise RuntimeError("the sim's pre-key size differs from the messenger's short form")
    forms = {"short": short_extra, "full": full_extra, "established": 0}
    jobs = [(seed, form, extra) for seed in seeds for form, extra in forms.items()]
    with ProcessPoolExecutor(max_workers=2) as pool:
        outcomes = dict(zip(jobs, pool.map(_run, jobs), strict=True))
    per_seed = []
    for seed in seeds:
        runs = {form: outcomes[(seed, form, extra)] for form, extra in forms.items()}
        ordinary = runs["established"]["ordinary_latency_p50_s"]
        short_p50 = runs["short"]["first_contact_latency_p50_s"]
        full_p50 = runs["full"]["first_contact_latency_p50_s"]
        per_seed.append(
            {
                "seed": seed,
                "first_text_p50_s": short_p50,
                "first_text_p50_s_full_form": full_p50,
                "ordinary_p50_s": ordinary,
                "ratio_first_to_ordinary_p50": _ratio(short_p50, ordinary),
                "ratio_full_form_to_ordinary_p50": _ratio(full_p50, ordinary),
                "runs": runs,
            }
        )
    limit = load_scenario("default").radio.frame_limit
    result = {
        "scenario": "default",
        "envelope_bytes": sizes,
        "frames_at_limit": {name: _frames(size, limit) for name, size in sizes.items()},
        "frame_limit": limit,
        "goal_ratio": GOAL_RATIO,
        "seeds": per_seed,
        "goal_met_every_seed": all(
            float(str(s["ratio_first_to_ordinary_p50"])) <= GOAL_RATIO for s in per_seed
        ),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
