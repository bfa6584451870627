"""The lab's `app secrets get NAME [--mode local|prod]`, written the way the Python original does
it (python-dotenv, boto3). It is the peer globo-secrets' benchmark compares against
(crates/globo-secrets/benches/get.rs); it is not part of globo.

    python secrets_get.py NAME [--mode local|prod] [--warm N]

--warm N: instead of printing the value, time N further gets on the same provider (a warm
client) and print the median in microseconds.
"""
import argparse
import os
import statistics
import sys
import time

import boto3
from dotenv import load_dotenv


class LocalSecretsProvider:
    def __init__(self, env_file=".env"):
        # The lab: secrets injected by Docker, systemd or the shell win over .env.
        load_dotenv(os.path.join(os.getcwd(), env_file), override=False)

    def get(self, name):
        value = os.getenv(name)
        if value is None:
            raise KeyError(
                f"Secret '{name}' not found in environment. "
                "Add it to your .env file or switch to prod mode."
            )
        return value


class AwsSecretsProvider:
    def __init__(self):
        # Endpoint, region and credentials from the standard AWS settings (AWS_ENDPOINT_URL...).
        self.client = boto3.client("secretsmanager")

    def get(self, name):
        try:
            return self.client.get_secret_value(SecretId=name)["SecretString"]
        except Exception as e:  # the lab's wording
            raise RuntimeError(f"Failed to fetch secret '{name}' from AWS Secrets Manager: {e}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--mode", default=None)
    parser.add_argument("--warm", type=int, default=0)
    args = parser.parse_args()
    mode = args.mode or os.getenv("APP_MODE", "local")
    provider = AwsSecretsProvider() if mode == "prod" else LocalSecretsProvider()
    try:
        value = provider.get(args.name)
    except (KeyError, RuntimeError) as e:
        print(e.args[0], file=sys.stderr)
        return 1
    if args.warm:
        times = []
        for _ in range(args.warm):
            start = time.perf_counter()
            provider.get(args.name)
            times.append(time.perf_counter() - start)
        print(f"{statistics.median(times) * 1e6:.1f}")
    else:
        print(value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
