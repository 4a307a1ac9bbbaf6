FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=soundstudio.settings.production
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir uv==0.13.9 && uv pip install --system --no-cache -r requirements.lock
COPY . .
RUN SECRET_KEY=build-only ALLOWED_HOSTS=localhost DATABASE_URL=postgres://build/none \
    REDIS_URL=redis://build:6379/0 python manage.py collectstatic --noinput
RUN useradd --create-home app && mkdir -p /app/var/media && chown -R app /app/var
USER app
EXPOSE 8000
CMD ["gunicorn", "soundstudio.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
