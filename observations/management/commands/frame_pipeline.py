"""``manage.py frame_pipeline``: queue, re-run, resume or run inline the per-frame pipeline."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from observations.frames import Frame
from observations.processing import rerun_frames, resume_stalled_frames, start_frame_pipeline
from observations.stages import run_stage
from observations.states import STAGES, FrameState


class Command(BaseCommand):
    help = ("Queue frames for the pipeline (the Celery chain), re-run done or failed ones, resume stalled "
            "ones, or run the stages here without a broker (--inline).")

    def add_arguments(self, parser):
        parser.add_argument("frame_ids", nargs="*", type=int, help="Frames to queue (default: see the options)")
        parser.add_argument("--received", action="store_true", help="Queue every frame still waiting ('received')")
        parser.add_argument("--failed", action="store_true", help="Re-run every failed frame from the start")
        parser.add_argument("--rerun", action="store_true", help="Re-run the given done or failed frames")
        parser.add_argument("--resume", type=float, metavar="MINUTES",
                            help="Re-queue frames that have not moved for MINUTES and are not done or failed")
        parser.add_argument("--inline", action="store_true",
                            help="Run the stages in this process instead of queueing them (no broker needed)")

    def handle(self, *args, frame_ids, received, failed, rerun, resume, inline, **options):
        if resume is not None:
            self.stdout.write(f"re-queued {resume_stalled_frames(resume)} stalled frame(s)")
            return
        ids = list(frame_ids)
        if received:
            ids += list(Frame.objects.filter(state=FrameState.RECEIVED).values_list("pk", flat=True))
        if failed:
            ids += list(Frame.objects.filter(state=FrameState.FAILED).values_list("pk", flat=True))
        if not ids:
            raise CommandError("nothing to do: give frame ids, or --received, --failed or --resume MINUTES")
        unknown = set(ids) - set(Frame.objects.filter(pk__in=ids).values_list("pk", flat=True))
        if unknown:
            raise CommandError(f"no frame(s) {', '.join(map(str, sorted(unknown)))}")
        if rerun or failed:
            from observations.states import restart

            restarted = restart(Frame, ids) if inline else rerun_frames(ids)
            self.stdout.write(f"{restarted} frame(s) sent back to the start")
            if not inline:
                return
        for frame_id in dict.fromkeys(ids):
            if inline:
                outcomes = []
                for stage in STAGES:
                    try:
                        outcomes.append(run_stage(frame_id, stage.name))
                    except Exception as exc:  # transient: storage or database unreachable
                        raise CommandError(f"frame {frame_id}, stage {stage.name}: {exc}; run again later") from exc
                frame = Frame.objects.get(pk=frame_id)
                self.stdout.write(f"frame {frame_id}: {frame.state} {frame.state_reason}".rstrip()
                                  + f" ({', '.join(outcomes)})")
            else:
                queued = start_frame_pipeline(frame_id)
                self.stdout.write(f"frame {frame_id}: {'queued' if queued else 'NOT queued (broker unreachable)'}")
