from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from core.handlers import AppCommand
from generation.ml.http_teacher import TeacherError
from generation.models import Teacher
from generation.services.teachers import teacher_create


class Command(AppCommand):
    help = (
        "Save a teacher: an OpenAI-compatible server (OpenAI, vLLM, llama.cpp, Ollama, TGI) or "
        "a transformers model loaded in process. Keys stay in the environment: give the "
        "variable's name."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--backend", choices=Teacher.Backend.values, default="openai-compatible"
        )
        parser.add_argument(
            "--base-url",
            default="",
            help="e.g. http://127.0.0.1:8080/v1 (llama.cpp, vLLM) or http://localhost:11434/v1 "
            "(Ollama)",
        )
        parser.add_argument("--model", required=True, help="Server's model name, or path/hub id.")
        parser.add_argument("--endpoint", choices=Teacher.Endpoint.values, default="chat")
        parser.add_argument("--api-key-env", default="", help="Name of the key's variable.")
        parser.add_argument("--device", default="")
        parser.add_argument("--dtype", default="auto")
        parser.add_argument("--temperature", type=float, default=0.9)
        parser.add_argument("--top-p", type=float, default=1.0)
        parser.add_argument("--max-tokens", type=int, default=32)
        parser.add_argument("--concurrency", type=int, default=8)
        parser.add_argument(
            "--timeout", type=float, default=60.0, help="Seconds one request may take."
        )
        parser.add_argument(
            "--max-answer-mb", type=float, default=4.0, help="Largest answer read, in MB."
        )
        parser.add_argument(
            "--give-up-after",
            type=int,
            default=20,
            help="Stop a run after this many batches in a row failed (0: never).",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Try the teacher first (one real request); save it only if it answers.",
        )

    def handle(self, *args, **o):
        try:
            teacher = teacher_create(
                name=o["name"],
                backend=o["backend"],
                base_url=o["base_url"],
                model=o["model"],
                endpoint=o["endpoint"],
                api_key_env=o["api_key_env"],
                device=o["device"],
                dtype=o["dtype"],
                temperature=o["temperature"],
                top_p=o["top_p"],
                max_tokens=o["max_tokens"],
                concurrency=o["concurrency"],
                timeout=o["timeout"],
                max_answer_mb=o["max_answer_mb"],
                give_up_after=o["give_up_after"],
                check=o["check"],
            )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from None
        except TeacherError as exc:
            raise CommandError(f"{exc} Not saved.") from None
        if o["check"]:
            self.stdout.write("Checked: it answers.")
        self.stdout.write(f"Teacher '{teacher.name}' saved ({teacher.get_backend_display()}).")
