# Local development. The native stack (no Docker) is managed by local/stack.py.
PY ?= python3

.PHONY: up down status logs reset env

up:      ## install what is missing, start Postgres, QuestDB and MinIO, wait until healthy
	$(PY) local/stack.py up

down:    ## stop the local services
	$(PY) local/stack.py down

status:  ## one line per service
	$(PY) local/stack.py status

logs:    ## tail the service logs (make logs SERVICE=minio for one)
	$(PY) local/stack.py logs $(SERVICE)

reset:   ## down, then wipe .state (data and generated secrets); keeps the install cache
	$(PY) local/stack.py reset

env:     ## print the STAGE1_* settings for the local stack (eval "$$(make -s env)")
	@$(PY) local/stack.py env
