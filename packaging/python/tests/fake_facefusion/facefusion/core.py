"""Test driver in place of FaceFusion's CLI (see ../README.md)."""
import sys
import threading

import numpy

from facefusion import inference_manager, process_manager, state_manager

MODULE = 'facefusion.processors.modules.face_swapper.core'


def _pool():
    model = state_manager.get_item('model_path')
    return inference_manager.get_inference_pool(MODULE, ['tiny'], {'tiny': {'path': model}})


def _frames(stop):
    while not stop.is_set():
        session = _pool().get('tiny')
        session.run(None, {'x': numpy.ones((4, 64), numpy.float32)})


def cli():
    args = sys.argv[1:]
    state_manager.init_item('execution_device_ids', [0])
    state_manager.init_item('execution_providers', args[1].split(',') if len(args) > 1 else ['cpu'])
    state_manager.init_item('face_swapper_model', 'inswapper_128_fp16')
    state_manager.init_item('model_path', args[0])
    stop = threading.Event()
    worker = None
    print('ready', flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == 'load':
            _pool()
        elif command == 'job':
            process_manager.start()
            stop.clear()
            worker = threading.Thread(target=_frames, args=(stop,))
            worker.start()
        elif command == 'end':
            stop.set()
            worker.join()
            process_manager.end()
        elif command == 'quit':
            break
        print('ok ' + command, flush=True)
