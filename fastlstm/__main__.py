"""``python -m fastlstm demo``."""
import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastlstm", description="Keras LSTM models without "
                                     "TensorFlow, from a fused C kernel.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="forecast with the Keras-trained example model")
    demo.add_argument("--steps", type=int, default=50)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import main as demo_main

        return demo_main(args.steps)
    return 2


if __name__ == "__main__":
    sys.exit(main())
