"""Training over several processes (DDP under torchrun, one machine or many): which process
this is, its device, and the collective operations the training commands need.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK in each process it starts; without them this is
the one process of a single-process run, and every operation here is the identity (no process
group, no torch.distributed calls), so a single-process run computes exactly what it always did.
The process group uses NCCL on GPUs and gloo on the CPU.

The module-level functions act on whatever process group is live, so a model part (the RVQ's
codebook statistics) can keep itself in step across processes without being handed one.
"""

import os

import torch


def launched_world() -> int:
    """How many processes torchrun started for this training (1: not under torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_batch_split(batch_size: int) -> None:
    """A global batch must split evenly over the processes; checked before any process group
    is formed, so every process stops at once with the reason."""
    world = launched_world()
    if batch_size % world:
        from audiotok.errors import AudiotokError

        raise AudiotokError(f"optim.batch_size {batch_size} does not split over {world} processes", "make it a multiple of the process count")


def _world() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """The rows of `rows` from every process, concatenated in rank order (each may hold a
    different number); `rows` itself in one process."""
    if _world() == 1:
        return rows
    import torch.distributed as dist

    count = torch.tensor([len(rows)], device=rows.device)
    counts = [torch.empty_like(count) for _ in range(_world())]
    dist.all_gather(counts, count)
    counts = [int(c) for c in counts]
    padded = rows.new_zeros((max(counts), *rows.shape[1:]))  # all_gather wants equal shapes
    padded[: len(rows)] = rows
    gathered = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(gathered, padded)
    return torch.cat([part[:n] for part, n in zip(gathered, counts)])


def broadcast_from_first(*tensors: torch.Tensor) -> None:
    """Overwrite `tensors` in every process with rank 0's values (in place)."""
    if _world() == 1:
        return
    import torch.distributed as dist

    for tensor in tensors:
        dist.broadcast(tensor, 0)


class Distributed:
    """Rank, world size and device from torchrun's environment (or a single process)."""

    def __init__(self, device: str):
        self.world = launched_world()
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        from audiotok.device import for_rank

        self.device = torch.device(for_rank(device, local_rank))
        if self.world > 1:
            import torch.distributed as dist

            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes files and logs progress."""
        return self.rank == 0

    def share(self, count: int) -> slice:
        """This process's contiguous share of `count` items (count a multiple of the world size)."""
        size = count // self.world
        return slice(self.rank * size, (self.rank + 1) * size)

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        return self.sum(values) / self.world if self.world > 1 else values

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            import torch.distributed as dist

            values = values.clone()
            dist.all_reduce(values)
        return values

    def sum_gradients(self, parameters) -> None:
        """Replace each gradient by its sum over the processes (each process's loss being its
        part of the global one): one all-reduce of all of them flattened. The parameters come
        in the same order everywhere; one without a gradient has none in every process."""
        if self.world == 1:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = self.sum(torch.cat([g.reshape(-1) for g in grads]))
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()
