"""auth.authenticate_user(): Colab's sign-in, noted in the file
FAKE_COLAB_AUTH; the tests' bucket is the GCS emulator, which takes anyone."""
import os


def authenticate_user():
    with open(os.environ["FAKE_COLAB_AUTH"], "a") as f:
        f.write("signed in\n")
