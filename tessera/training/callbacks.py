"""Trainer callbacks: Tessera's progress bar for Hugging Face trainers, and a loss record."""

from __future__ import annotations

from transformers import TrainerCallback

from tessera.progress import progress_bar


class RichProgress(TrainerCallback):
    """One rich bar over optimizer steps (a resumed run starts where its checkpoint was),
    with the last logged loss in the description, in place of the trainer's tqdm and prints."""

    def __init__(self, description: str):
        self.description = description
        self.bar = None
        self.task = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.bar = progress_bar(True)
        self.bar.start()
        self.task = self.bar.add_task(self.description, total=state.max_steps, completed=state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar:
            self.bar.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar and logs and "loss" in logs:
            self.bar.update(self.task, description=f"{self.description} loss {logs['loss']:.4f}")

    def on_train_end(self, args, state, control, **kwargs):
        self.close()

    def close(self) -> None:
        """Stop drawing; also for runs cut off before `on_train_end`."""
        if self.bar:
            self.bar.stop()
            self.bar = None


def logged_losses(log_history: list[dict]) -> list[tuple[int, float]]:
    """(step, loss) of every logged training loss, for the record written beside the model: from
    the trainer state's history, which a resumed run restores from its checkpoint (a callback
    would see only this process's logs)."""
    return [(int(entry["step"]), float(entry["loss"])) for entry in log_history if "loss" in entry]
