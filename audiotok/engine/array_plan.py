"""How long a job array takes on a cluster: the dry run's tasks scheduled over nodes' slots.

A task is one `--shard J/N` (or `--task J/N`) job: the model load plus its audio at one task's
speed. Slots are nodes x tasks a node runs at once (its GPUs x processes a GPU, or its cores);
pending array tasks start in index order as slots free up, which is what Slurm does with one
`sbatch --array` job and no other load. Two assumptions let a small sample and this machine
speak for a large corpus on other hardware: --assume-hours replaces the input by a corpus of
that many hours split evenly over the tasks (as shard ranges of a large corpus are), and
--assume-x-real-time replaces the calibration's speed by one task's speed on the target nodes.
"""

import heapq
import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class ArrayPlan:
    nodes: int
    tasks_per_node: int = 1
    x_real_time: float | None = None  # one task's speed on the target nodes; None: the calibration's
    hours: float | None = None  # a corpus of this size split evenly over the tasks; None: the input's own split
    processes_per_task: int = 1  # a task's worker processes, sharing its audio evenly (tokenize-shards --num-proc)

    @property
    def slots(self) -> int:
        return self.nodes * self.tasks_per_node


def schedule(task_seconds: list[float], slots: int) -> float:
    """Wall time of tasks started in order, each on the first slot to free up."""
    free = [0.0] * min(slots, len(task_seconds))
    heapq.heapify(free)
    end = 0.0
    for seconds in task_seconds:
        start = heapq.heappop(free)
        end = max(end, start + seconds)
        heapq.heappush(free, start + seconds)
    return end


def plan_array(audio_seconds: list[float], load_seconds: float, calibrated_x_real_time: float | None, plan: ArrayPlan) -> dict:
    """The array's numbers: tasks, audio hours and time per task, slots and wall time."""
    audio = list(audio_seconds)
    if plan.hours is not None:
        audio = [plan.hours * 3600 / len(audio)] * len(audio)
    speed = plan.x_real_time or calibrated_x_real_time
    if speed:
        speed *= plan.processes_per_task
    report = {
        "tasks": len(audio),
        "nodes": plan.nodes,
        "tasks_per_node": plan.tasks_per_node,
        "processes_per_task": plan.processes_per_task,
        "slots": plan.slots,
        "hours": round(sum(audio) / 3600, 6),
        "hours_per_task": _spread([s / 3600 for s in audio]),
        "x_real_time": speed,
        "assumed": {"hours": plan.hours, "x_real_time": plan.x_real_time},
        "task_seconds": None,
        "wall_seconds": None,
    }
    if speed:
        times = [load_seconds + s / speed for s in audio]
        report["task_seconds"] = _spread(times)
        report["wall_seconds"] = round(schedule(times, plan.slots), 3)
    return report


def _spread(values: list[float]) -> dict:
    if not values:
        return {"min": None, "median": None, "max": None}
    return {"min": round(min(values), 6), "median": round(statistics.median(values), 6), "max": round(max(values), 6)}
