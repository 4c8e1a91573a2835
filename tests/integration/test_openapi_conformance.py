"""The OpenAPI document tells the truth: schemathesis drives every operation of a real
gateway (memory service, worker, Redis, Chroma; the offline LLM) with schema-valid and
schema-violating requests and runs all its checks on each answer — no 5xx, every status
and body documented, bad input refused, good input accepted.

Bounded for ``make test``: a fixed number of examples per operation, derandomized (the
same cases every run), no shrinking.
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

#: examples per operation and mode: ~40 operations × 2 modes × this stays ≲ 2 minutes
EXAMPLES = int(os.environ.get('MNEMO_SCHEMATHESIS_EXAMPLES', '5'))

BOUNDED = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same cases every run
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is reported
    suppress_health_check=list(HealthCheck),
    database=None,
)


def test_every_operation_conforms(offline_platform):
    gw, _worker = offline_platform
    schema = schemathesis.openapi.from_url(gw.url + "/openapi.json")
    failures: list[str] = []
    operations = 0
    unsatisfiable: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in GenerationMode:

            @BOUNDED
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case):
                case.call_and_validate(base_url=gw.url)

            try:
                check()
            except Unsatisfiable:
                # nothing to negate (an operation without parameters or body has no invalid
                # request): not a failure, and the positive run of it still checked it
                assert mode is GenerationMode.NEGATIVE, operation.label
                unsatisfiable.append(operation.label)
            except BaseException as exc:  # noqa: BLE001 every failure of every operation, not just the first
                failures.append(f"{operation.label} [{mode}]: {exc}")
    assert not failures, f"{len(failures)} failing:\n\n" + "\n\n".join(failures)
    assert operations >= 25  # every operation of the document was exercised
    assert set(unsatisfiable) <= {"GET /healthz", "GET /readyz", "GET /v1/info", "GET /v1/me"}
