"""The toolkit's reports as pages a person opens: one self-contained HTML
file each (the plots embedded as PNG, no network needed), from a Jinja2
template that escapes everything it is given (model names, tub paths and
card fields are untrusted).

    page = Page("Model comparison")
    page.figure(fig, "Steering on the unseen frames")   # a matplotlib Figure
    page.write("compare.html", "compare.html.j2", rows=rows)

Templates live in trainer/core/templates/. Jinja2 comes with the [report]
extra (make install has it); where it is missing, one line says how to get it.
"""
import base64
import io
import os

from trainer.core.errors import UserError
from trainer.core.storage import atomic_path

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


def png(fig):
    """FIG (a matplotlib Figure on the Agg canvas) as a data: URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure(size=(8, 4)):
    """(fig, ax): a figure drawn by Agg alone, no pyplot, nothing global."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


class Page:
    """A report being assembled: its title and figures, then written once."""

    def __init__(self, title):
        self.title = title
        self.figures = []           # [{"src": data URI, "caption": text}]

    def figure(self, fig, caption):
        fig.tight_layout()
        self.figures.append({"src": png(fig), "caption": caption})

    def write(self, path, template, **context):
        """Render TEMPLATE with CONTEXT (and title, figures) into PATH, atomically."""
        try:
            import jinja2
        except ImportError:
            raise UserError("jinja2 is missing, which the reports need: pip install "
                            "'robocar-trainer[report]' (make install has it)") from None
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                                 autoescape=True, undefined=jinja2.StrictUndefined)
        html = env.get_template(template).render(title=self.title, figures=self.figures,
                                                 **context)
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(html)
        return path
