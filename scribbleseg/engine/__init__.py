"""scribbleseg.engine"""
