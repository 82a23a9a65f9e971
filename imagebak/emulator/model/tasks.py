"""Jobs (Huawei's asynchronous tasks): one per create or copy call, over the images it started.

Owns ``create_task``, the task lookups and the outcome derived from the task's images
(running, success, failed), frozen when one of those images is removed.
"""

from __future__ import annotations

from imagebak.emulator.model.base import ModelBase, synced
from imagebak.emulator.model.entities import CloudError, Task


class TasksMixin(ModelBase):
    @synced
    def create_task(self, account: str, region: str, task_type: str, image_ids: list[str]) -> Task:
        acc = self._account(account)
        self._check_region(acc, region)
        task_id = self._new_id(self._rules(acc).task_id)
        task = Task(task_id, account, region, task_type, self._now, list(image_ids))
        self._tasks[task.task_id] = task
        return self._out(task)

    @synced
    def get_task(self, account: str, task_id: str) -> Task:
        task = self._tasks.get(task_id)
        if task is None or task.account != account:
            raise CloudError("not_found", f"job {task_id} does not exist", resource="job")
        return self._out(task)

    @synced
    def task_status(self, task: Task) -> tuple[str, str | None]:
        """("running"|"success"|"failed", reason), derived from the task's images."""
        live = self._tasks.get(task.task_id, task)
        return self._task_outcome(live)

    def _task_outcome(self, task: Task) -> tuple[str, str | None]:
        if task.final_status is not None:
            return task.final_status, task.final_reason
        images = [self._images.get(i) for i in task.image_ids]
        for img in images:
            if img is None:
                return "failed", "image deleted"
            if img.status == "failed":
                return "failed", img.fail_reason or "image creation failed"
        if all(img is not None and img.status == "available" for img in images):
            return "success", None
        return "running", None

    def _freeze_tasks(self, image_id: str, reason: str) -> None:
        """Before ``image_id`` goes: its tasks keep the outcome they had, or fail with ``reason``."""
        for task in self._tasks.values():
            if image_id in task.image_ids and task.final_status is None:
                status, why = self._task_outcome(task)
                task.final_status, task.final_reason = ("failed", reason) if status == "running" else (status, why)
