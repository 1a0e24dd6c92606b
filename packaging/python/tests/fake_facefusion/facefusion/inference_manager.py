from onnxruntime import InferenceSession

from facefusion import state_manager

INFERENCE_POOL_SET = {'cli': {}, 'ui': {}}


def _context(module_name, model_names, device_id, providers):
    return '.'.join([module_name] + list(model_names) + [str(device_id)] + list(providers))


def _providers(device_id):
    chosen = []
    for name in state_manager.get_item('execution_providers'):
        if name == 'cuda':
            chosen.append(('CUDAExecutionProvider', {'device_id': device_id}))
        if name == 'cpu':
            chosen.append('CPUExecutionProvider')
    return chosen


def get_inference_pool(module_name, model_names, model_source_set):
    device_id = state_manager.get_item('execution_device_ids')[0]
    providers = state_manager.get_item('execution_providers')
    context = _context(module_name, model_names, device_id, providers)
    pools = INFERENCE_POOL_SET['cli']
    if not pools.get(context):
        pool = {}
        for model_name, source in model_source_set.items():
            pool[model_name] = InferenceSession(source['path'], providers=_providers(device_id))
        pools[context] = pool
    # 3.8.1 stores the pool, then looks it up again by context.
    return INFERENCE_POOL_SET.get('cli').get(context)


def clear_inference_pool(module_name, model_names):
    device_id = state_manager.get_item('execution_device_ids')[0]
    providers = state_manager.get_item('execution_providers')
    context = _context(module_name, model_names, device_id, providers)
    if INFERENCE_POOL_SET['cli'].get(context):
        del INFERENCE_POOL_SET['cli'][context]
