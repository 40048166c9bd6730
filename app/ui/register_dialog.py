"""Register any Hugging Face model by repo id or URL; the server's reason shows on failure."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QLineEdit, QWidget

from app.core.wire import RegisterAnswer
from app.ui.asyncs import spawn
from app.ui.i18n import tr
from app.ui.state import Part, UiState
from app.ui.widgets import FormDialog


class RegisterDialog(FormDialog):
    """Repo or URL, optional file and display name; `registered` carries the new model's id."""

    registered = Signal(str)

    def __init__(self, state: UiState, parent: QWidget | None = None) -> None:
        super().__init__(tr("Register a model"), parent)
        self.state = state
        form = QFormLayout()
        self.repo = QLineEdit()
        self.repo.setPlaceholderText(tr("org/repo or https://huggingface.co/org/repo"))
        self.repo.setAccessibleName(tr("Hugging Face repo or URL"))
        self.filename = QLineEdit()
        self.filename.setPlaceholderText(tr("only when the repo has several GGUF files"))
        self.filename.setAccessibleName(tr("file name"))
        self.display_name = QLineEdit()
        self.display_name.setAccessibleName(tr("display name"))
        form.addRow(tr("Repo or URL"), self.repo)
        form.addRow(tr("File (optional)"), self.filename)
        form.addRow(tr("Display name (optional)"), self.display_name)
        self.body.addLayout(form)
        self.finish(tr("Register"), 560)

    def submit(self) -> None:
        """Send the registration; close on success, show the reason on failure."""
        repo = self.repo.text().strip()
        if not repo:
            self.show_error(tr("Enter a Hugging Face repo id (org/name) or a model URL."))
            return
        self.busy()

        def done(result: RegisterAnswer) -> None:
            self.state.refresh(Part.MODELS)
            self.registered.emit(result["name"])
            self.accept()

        call = self.state.client.register(
            repo=repo,
            filename=self.filename.text().strip() or None,
            display_name=self.display_name.text().strip() or None,
        )
        spawn(call, on_error=self.show_error, on_done=done)
