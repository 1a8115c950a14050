"""How the farm's head names a cell whose task raised: a device that went away is ``lost`` (run it again), an
error of the run itself is ``failed``. The errors travel as Ray pickles them."""

from __future__ import annotations

import pickle

import pytest

from edgesep.devices.base import DeviceLostError, DeviceRunError, ProcessOutcome, finish_run
from edgesep.farm.driver import classify
from edgesep.farm.tasks import StageError
from edgesep.pipeline.run import StepFailed

ray_exceptions = pytest.importorskip("ray.exceptions")


def _task_error(cause: Exception):
    return ray_exceptions.RayTaskError("validate", "traceback", cause)


def test_an_agent_killed_by_a_signal_is_a_lost_device_and_stays_lost_through_pickling():
    killed = ProcessOutcome(-9, "", "", timed_out=False)
    with pytest.raises(DeviceLostError, match="killed by signal 9"):
        finish_run(killed, {}, ["float"], where="pi", timeout_s=10.0)
    lost = StepFailed("validate-pi", DeviceLostError("pi: the agent was killed by signal 9"))
    shipped = pickle.loads(pickle.dumps(StageError(str(lost), lost.exit_code, lost.device_lost)))
    assert shipped.device_lost is True
    assert classify(_task_error(shipped))[0] == "lost"


def test_a_failing_run_is_failed():
    failed = StepFailed("validate-pi", DeviceRunError("pi: agent failed: bad model"))
    shipped = pickle.loads(pickle.dumps(StageError(str(failed), failed.exit_code, failed.device_lost)))
    assert shipped.device_lost is False
    status, reason = classify(_task_error(shipped))
    assert status == "failed" and "bad model" in reason
