"""The two pictures a training run leaves: loss per epoch, and predicted
against driven steering on the evaluation frames. matplotlib is imported
when a picture is drawn, not when the job starts (about 1.5 s)."""
from trainer.core.storage import atomic_path


def _figure(size):
    """A figure drawn by Agg alone: no pyplot, no GUI backend, nothing global."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _legend_outside(ax):
    """The legend beside the axes, where it can hide no curve."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              fontsize=8)


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def loss_plot(history, title, path):
    fig, ax = _figure((7.5, 4))
    epochs = range(1, len(history.get("loss", [])) + 1)
    ax.plot(epochs, history.get("loss", []), marker="o", label="train loss")
    ax.plot(epochs, history.get("val_loss", []), marker="o", label="validation loss")
    val = [(v, e) for e, v in zip(epochs, history.get("val_loss", [])) if v == v]
    if val:                          # DonkeyCar keeps the epoch of the best val_loss
        best, kept = min(val)
        ax.axvline(kept, color="grey", linestyle="--", linewidth=1)
        ax.plot([kept], [best], marker="*", markersize=14, color="gold",
                markeredgecolor="black", linestyle="none", label=f"kept (epoch {kept})")
    ax.set(title=f"{title}: loss", xlabel="epoch", ylabel="loss (mse)")
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))     # whole epochs only
    _legend_outside(ax)
    fig.tight_layout()
    _save(fig, path)
    return fig


def prediction_plot(driven, predictions, title, path, source):
    """Steering over a contiguous stretch of frames (SOURCE says which)."""
    fig, ax = _figure((10.5, 4.5))
    ax.plot(driven[:, 0], color="black", linewidth=2, label="driven")
    for fmt, style in (("h5", "-"), ("tflite", "--"), ("onnx", ":")):
        if fmt in predictions:
            ax.plot(predictions[fmt][:, 0], style, label=f"predicted ({fmt})")
    ax.set(title=f"{title}: steering, frames of {source}", xlabel="frame (consecutive "
           "records)", ylabel="steering", ylim=(-1.1, 1.1))
    ax.title.set_fontsize(9)
    _legend_outside(ax)
    fig.tight_layout()
    _save(fig, path)
    return fig
