"""One model's own settings: how many layers it offloads to the GPU (Auto, All, CPU only, or a
number) and how much context a conversation gets (Auto, or a number of tokens)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.types import CONTEXT_SIZE_MAX, CONTEXT_SIZE_MIN, GPU_LAYERS_MAX
from app.core.wire import RegisteredModel
from app.ui.asyncs import spawn
from app.ui.i18n import tr
from app.ui.state import Part, UiState

AUTO, ALL, CPU, LAYERS = range(4)  # the choices, as button ids


def describe(gpu_layers: int | None) -> str:
    """A model's setting in words, as the table and the dialog show it."""
    if gpu_layers is None:
        return tr("Auto")
    if gpu_layers < 0:
        return tr("All layers")
    if gpu_layers == 0:
        return tr("CPU only")
    if gpu_layers == 1:
        return tr("1 layer")
    return tr("{n} layers").format(n=gpu_layers)


class GpuLayersDialog(QDialog):
    """Four choices for one model, preset to its current value; Save sends the PATCH and
    closes, or shows the balancer's reason and stays open."""

    def __init__(self, state: UiState, model: RegisteredModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.model_id = model["id"]
        name = model.get("name") or model["id"]
        self.setWindowTitle(tr("GPU layers — {name}").format(name=name))
        layout = QVBoxLayout(self)
        intro = QLabel(
            tr(
                "How many of {name}'s layers every node offloads to its GPU. "
                "The model loads again with the new value on its next use."
            ).format(name=name)
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.choices = QButtonGroup(self)
        texts = {
            AUTO: tr("Auto: as many as fit the GPU's free memory (the node's setting)"),
            ALL: tr("All layers on the GPU"),
            CPU: tr("CPU only"),
            LAYERS: tr("This many layers:"),
        }
        self.buttons_by_id: dict[int, QRadioButton] = {}
        for choice, text in texts.items():
            button = QRadioButton(text)
            self.choices.addButton(button, choice)
            self.buttons_by_id[choice] = button
        self.layers = QSpinBox()
        self.layers.setRange(1, GPU_LAYERS_MAX)
        self.layers.setAccessibleName(tr("number of GPU layers"))
        for choice in (AUTO, ALL, CPU):
            layout.addWidget(self.buttons_by_id[choice])
        row = QHBoxLayout()
        row.addWidget(self.buttons_by_id[LAYERS])
        row.addWidget(self.layers)
        row.addStretch(1)
        layout.addLayout(row)
        self._preset(model.get("gpu_layers"))
        self.choices.idToggled.connect(lambda _id, _on: self._sync_spin())
        context = model.get("context_size")
        self.context_auto = QCheckBox(
            tr("Context: what the model was trained for, within the memory (the node's setting)")
        )
        self.context_auto.setChecked(context is None)
        self.context = QSpinBox()
        self.context.setRange(CONTEXT_SIZE_MIN, CONTEXT_SIZE_MAX)
        self.context.setSingleStep(1024)
        self.context.setValue(context or 8192)
        self.context.setSuffix(" " + tr("tokens per conversation"))
        self.context.setAccessibleName(tr("context size in tokens"))
        self.context_auto.toggled.connect(lambda _on: self._sync_spin())
        layout.addWidget(self.context_auto)
        layout.addWidget(self.context)
        self._sync_spin()
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setProperty("tone", "error")
        self.error.hide()
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setText(tr("Save"))
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText(tr("Cancel"))
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.resize(460, self.sizeHint().height())

    def _preset(self, gpu_layers: int | None) -> None:
        if gpu_layers is None:
            choice = AUTO
        elif gpu_layers < 0:
            choice = ALL
        elif gpu_layers == 0:
            choice = CPU
        else:
            choice = LAYERS
            self.layers.setValue(gpu_layers)
        self.buttons_by_id[choice].setChecked(True)

    def _sync_spin(self) -> None:
        self.layers.setEnabled(self.choices.checkedId() == LAYERS)
        if hasattr(self, "context"):
            self.context.setEnabled(not self.context_auto.isChecked())

    def context_value(self) -> int | None:
        """The context as the API takes it: None (the node's setting) or tokens."""
        return None if self.context_auto.isChecked() else self.context.value()

    def value(self) -> int | None:
        """The chosen setting as the API takes it: None, -1, 0 or a number of layers."""
        return {AUTO: None, ALL: -1, CPU: 0}.get(self.choices.checkedId(), self.layers.value())

    def submit(self) -> None:
        """Send the setting; close on success, show the reason on failure."""
        self.buttons.setEnabled(False)
        self.error.hide()

        def done(_entry: RegisteredModel) -> None:
            self.state.refresh(Part.MODELS)
            self.accept()

        def failed(reason: str) -> None:
            self.buttons.setEnabled(True)
            self.error.setText(reason)
            self.error.show()

        spawn(
            self.state.client.set_model_settings(
                self.model_id, {"gpu_layers": self.value(), "context_size": self.context_value()}
            ),
            on_error=failed,
            on_done=done,
        )
