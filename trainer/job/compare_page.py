"""The comparison's page (compare.py): the ranked table, what was left out
and why, and the pictures: steering error against the baselines, loss
curves and prediction traces overlaid, and a strip of the frames where the
models disagree most.

    write("compare.html", result)      # a compare.Result

One self-contained file (core/pages.py, templates/compare.html.j2); every
name and card field in it is escaped.
"""
import numpy as np

from trainer.core.pages import Page
from trainer.job.evaluate import images_of

STRIP = 6          # frames in the strip
APART = 5          # at least this many frames between two of them
TRACE = 300        # frames of the traces


def write(out, result):
    """The page of a compare.Result: its models best first (their facts as
    text in .rows), those left out, the frames and the conclusion."""
    ranked, frames, driven, order = result.ranked, result.frames, result.driven, \
        result.order
    page = Page(f"Which model is best: {len(ranked)} compared on {frames.count} frames")
    page.figure(_errors(ranked), "Steering error on these frames (lower is better), "
                "against a constant guess (the training mean) and steering straight")
    page.figure(_losses(ranked), "Loss per epoch: validation (solid) and training "
                "(dashed); the star is the epoch each run kept")
    stretch = _stretch(order)
    page.figure(_traces(ranked, driven, stretch, order), "Steering and throttle on "
                f"{len(stretch)} consecutive frames of {order[stretch[0]][0]}: driven "
                "(black) and each model")
    picked = disagreements(ranked, driven)
    images = _images(frames, order, picked)
    page.figure(_strip(ranked, driven, order, picked, images),
                "The frames where the models disagree most about steering"
                if len(ranked) > 1 else "The frames where the model errs most")
    sweeps = {r["sweep"] for r in result.rows}
    disagree = [{"record": f"{order[i][0]} #{order[i][2].get('_index')}",
                 "driven": f"{driven[i, 0]:+.2f}",
                 "answers": [f"{m.predicted[i, 0]:+.2f}" for m in ranked]} for i in picked]
    return page.write(out, "compare.html.j2", rows=result.rows, left_out=result.left_out,
                      frames=frames, sweep=sweeps.pop() if len(sweeps) == 1 else None,
                      disagree=disagree, names=[m.name for m in ranked],
                      conclusion=result.conclusion)


def disagreements(ranked, driven, n=STRIP, apart=APART):
    """Indexes of the N frames where the models' steering differs most (one
    model: where it errs most), no two closer than APART frames."""
    steering = np.stack([m.predicted[:, 0] for m in ranked])
    spread = steering.max(axis=0) - steering.min(axis=0) if len(ranked) > 1 else \
        np.abs(steering[0] - driven[:, 0])
    picked = []
    for i in np.argsort(-spread, kind="stable"):
        if all(abs(int(i) - j) >= apart for j in picked):
            picked.append(int(i))
        if len(picked) == n:
            break
    return picked


def _figure(size, rows=1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, 1, squeeze=False)[:, 0]


def _colors(ranked):
    from matplotlib import colormaps
    cycle = colormaps["tab10"]
    return {m.name: cycle(i % 10) for i, m in enumerate(ranked)}


def _errors(ranked):
    fig, (ax,) = _figure((8, 0.6 * len(ranked) + 2))
    names = [m.name for m in ranked][::-1]
    values = [m.judged["steering"]["model"] for m in ranked][::-1]
    colors = _colors(ranked)
    ax.barh(names, values, color=[colors[n] for n in names])
    first = ranked[0].judged["steering"]
    ax.axvline(first["constant"], color="grey", linestyle="--",
               label=f"constant guess {first['constant_value']:+.2f}")
    ax.axvline(first["zero"], color="black", linestyle=":", label="steering 0")
    ax.set(xlabel="mean steering error")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def _losses(ranked):
    fig, (ax,) = _figure((9, 4.5))
    colors = _colors(ranked)
    for m in ranked:
        history = m.card.get("history") if isinstance(m.card.get("history"), dict) else {}
        for key, style in (("val_loss", "-"), ("loss", "--")):
            values = [v for v in history.get(key) or [] if isinstance(v, (int, float))]
            ax.plot(range(1, len(values) + 1), values, style, marker="o", markersize=3,
                    color=colors[m.name], label=m.name if key == "val_loss" else None)
        kept, best = m.card.get("best_epoch"), m.card.get("best_val_loss")
        if isinstance(kept, int) and isinstance(best, (int, float)):
            ax.plot([kept], [best], marker="*", markersize=12, color=colors[m.name],
                    markeredgecolor="black", linestyle="none")
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    # Each type has its own loss (categorical: cross-entropy): a log scale shows all.
    ax.set(xlabel="epoch", ylabel="loss (log scale)", yscale="log")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return fig


def _stretch(order, n=TRACE):
    """Indexes of up to N consecutive frames of the first tub."""
    first = order[0][0]
    return [i for i, (tub, _, _) in enumerate(order) if tub == first][:n]


def _traces(ranked, driven, stretch, order):
    fig, axes = _figure((11, 6), rows=2)
    colors = _colors(ranked)
    for ax, axis, name in zip(axes, (0, 1), ("steering", "throttle")):
        ax.plot(driven[stretch, axis], color="black", linewidth=2, label="driven")
        for m in ranked:
            ax.plot(m.predicted[stretch, axis], color=colors[m.name], linewidth=1,
                    label=m.name)
        ax.set(ylabel=name, ylim=(-1.1, 1.1))
    axes[-1].set(xlabel=f"frame (records {order[stretch[0]][2].get('_index')}-"
                 f"{order[stretch[-1]][2].get('_index')})")
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return fig


def _images(frames, order, picked):
    return [images_of(order[i][1], [order[i][2]], frames.cfg)[0] for i in picked]


def _strip(ranked, driven, order, picked, images):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    n = max(len(picked), 1)
    fig = Figure(figsize=(2.2 * n, 2.2 + 0.22 * (len(ranked) + 1)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n, squeeze=False)[0]
    colors = _colors(ranked)
    for ax, i, image in zip(axes, picked, images):
        ax.imshow(np.asarray(image, dtype=np.uint8).squeeze(),
                  cmap="gray" if np.asarray(image).ndim == 2 else None)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"#{order[i][2].get('_index')}", fontsize=8)
        lines = [("driven", driven[i, 0], "black")] + \
            [(m.name, m.predicted[i, 0], colors[m.name]) for m in ranked]
        for row, (name, value, color) in enumerate(lines):
            ax.text(0.0, -0.06 - 0.13 * row, f"{value:+.2f} {name[:20]}", color=color,
                    fontsize=8, transform=ax.transAxes, va="top")
    fig.subplots_adjust(bottom=0.12 * (len(ranked) + 1) / (1 + 0.1 * len(ranked)))
    return fig
