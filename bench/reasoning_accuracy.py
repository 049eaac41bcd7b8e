"""Does o3's thinking phase change the bundled model's answers? A small arithmetic and logic set.

Starts ``serverroom serve`` (the bundled SmolLM2-135M; ``o3`` is it with the scaffolded thinking
phase), asks every question at each effort through the ``openai`` SDK (greedy: ``o3`` takes
only temperature 1, so the seed fixes its sampling), and prints the share answered correctly
(the expected number or word appears in the answer, not in the reasoning). Effort ``none`` is
the same model without thinking: the ratio against it is the thinking's effect.

    python bench/reasoning_accuracy.py [--efforts none,low,medium] [--seeds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

from openai import OpenAI

sys.path.insert(0, os.path.dirname(__file__))
from _net import free_port, wait_ready

QUESTIONS = [
    ("What is 2 + 3?", "5"),
    ("What is 7 + 5?", "12"),
    ("What is 10 - 4?", "6"),
    ("What is 6 times 3?", "18"),
    ("What is 9 + 8?", "17"),
    ("What is 15 - 7?", "8"),
    ("What is 4 times 4?", "16"),
    ("What is 20 divided by 5?", "4"),
    ("What is 12 + 13?", "25"),
    ("What is 100 - 1?", "99"),
    ("I have 3 apples and buy 4 more. How many apples do I have?", "7"),
    ("A box holds 6 eggs. How many eggs are in 2 boxes?", "12"),
    ("Tom is 10 and his sister is 3 years older. How old is his sister?", "13"),
    ("There are 5 birds on a tree and 2 fly away. How many are left?", "3"),
    ("What day comes after Monday?", "tuesday"),
    ("Which is larger, 9 or 14?", "14"),
    ("How many legs do 2 dogs have in total?", "8"),
    ("If a train leaves at 3 pm and travels 2 hours, when does it arrive?", "5"),
    ("What is half of 10?", "5"),
    ("What is 3 squared?", "9"),
]


def correct(answer: str, expected: str) -> bool:
    words = re.findall(r"[a-z]+|\d+", answer.lower())
    return expected in words


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--efforts", default="none,low,medium")
    parser.add_argument("--seeds", type=int, default=1, help="runs of the set per effort")
    parser.add_argument("--max-output-tokens", type=int, default=320)
    args = parser.parse_args()
    port = free_port()
    data = tempfile.mkdtemp(prefix="reasoning-bench-")
    env = {**os.environ, "SERVERROOM_DATA_DIR": data, "SERVERROOM_PORT": str(port)}
    server = subprocess.Popen([sys.executable, "-m", "serverroom", "serve"], env=env)
    try:
        wait_ready(f"http://127.0.0.1:{port}/health", timeout=300)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-bench")
        scores: dict[str, float] = {}
        for effort in args.efforts.split(","):
            right = total = reasoning = 0
            started = time.monotonic()
            for _ in range(args.seeds):
                for question, expected in QUESTIONS:
                    response = client.responses.create(
                        model="o3",
                        input=question,
                        reasoning={"effort": effort},  # type: ignore[typeddict-item]
                        max_output_tokens=args.max_output_tokens,
                        store=False,
                    )
                    right += correct(response.output_text, expected)
                    total += 1
                    assert response.usage is not None
                    reasoning += response.usage.output_tokens_details.reasoning_tokens
            scores[effort] = right / total
            print(
                f"effort={effort:<7} correct {right}/{total} = {right / total:.2f}"
                f"  reasoning tokens/answer {reasoning / total:.0f}"
                f"  {time.monotonic() - started:.0f} s",
                flush=True,
            )
        base = scores.get("none")
        if base:
            for effort, score in scores.items():
                print(f"ratio {effort}/none = {score / base:.2f}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
