"""The panel's look: dark and dense, as the NLEs editors live in (Resolve, Premiere, Avid)."""
from __future__ import annotations

from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QApplication

ACCENT = "#4f8fe6"
BACKGROUND, PANEL, TEXT, MUTED = "#1e1f22", "#26282c", "#d8d8d8", "#8a8d93"

STYLE = f"""
QWidget {{ font-size: 11px; }}
QGroupBox {{ border: 1px solid #3a3d42; margin-top: 10px; padding-top: 4px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 6px; color: {MUTED}; }}
QPushButton {{ background: #33363b; border: 1px solid #44484e; padding: 3px 8px; }}
QPushButton:hover {{ background: #3c4046; }}
QPushButton:disabled {{ color: #666; }}
QPushButton#generate {{ background: {ACCENT}; color: white; font-weight: bold; }}
QLineEdit, QSpinBox, QDoubleSpinBox, QComboBox, QPlainTextEdit {{
    background: #15161a; border: 1px solid #3a3d42; padding: 2px; }}
QListWidget, QTreeWidget {{ background: #15161a; border: 1px solid #3a3d42; }}
QProgressBar {{ border: 1px solid #3a3d42; text-align: center; height: 14px; }}
QProgressBar::chunk {{ background: {ACCENT}; }}
QLabel#timecode {{ font-family: monospace; font-size: 16px; color: #e8c15a; }}
QStatusBar {{ color: {MUTED}; }}
"""


def apply_dark(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    for role, colour in ((QPalette.ColorRole.Window, PANEL), (QPalette.ColorRole.Base, BACKGROUND),
                         (QPalette.ColorRole.AlternateBase, PANEL),
                         (QPalette.ColorRole.Text, TEXT), (QPalette.ColorRole.WindowText, TEXT),
                         (QPalette.ColorRole.Button, "#33363b"),
                         (QPalette.ColorRole.ButtonText, TEXT),
                         (QPalette.ColorRole.Highlight, ACCENT),
                         (QPalette.ColorRole.HighlightedText, "#ffffff"),
                         (QPalette.ColorRole.ToolTipBase, PANEL),
                         (QPalette.ColorRole.ToolTipText, TEXT),
                         (QPalette.ColorRole.PlaceholderText, "#6d7077")):
        palette.setColor(role, QColor(colour))
    app.setPalette(palette)
    app.setStyleSheet(STYLE)
