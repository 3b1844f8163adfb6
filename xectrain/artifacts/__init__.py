"""Run artifacts: prediction CSVs, resolution / importance / saliency PDFs, event displays and
ROOT predictions (streamed MAE / inpainter files, the regressor's validation_results).
Figures are drawn with matplotlib's Agg canvas (no display needed)."""

from .csvio import csv_path, read_predictions_csv, write_predictions_csv
from .eventdisplay import EventRecord, plot_event, plot_worst_events
from .importance import plot_face_importance, plot_saliency, saliency_by_face
from .regressor import (
    find_prediction_csvs,
    plot_task,
    plotted_tasks,
    regenerate_plots,
    write_regressor_artifacts,
    write_validation_root,
)
from .resolution import energy_resolution_fit
from .rootio import PredictionRootWriter, TableRootWriter, read_metadata

__all__ = [
    "EventRecord",
    "PredictionRootWriter",
    "TableRootWriter",
    "csv_path",
    "energy_resolution_fit",
    "find_prediction_csvs",
    "plot_event",
    "plot_face_importance",
    "plot_saliency",
    "plot_task",
    "plot_worst_events",
    "plotted_tasks",
    "read_metadata",
    "read_predictions_csv",
    "regenerate_plots",
    "saliency_by_face",
    "write_predictions_csv",
    "write_regressor_artifacts",
    "write_validation_root",
]
