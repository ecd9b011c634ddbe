"""Browser front end (Gradio page, Viser viewer) over ``studio`` sessions; nothing here yet."""
